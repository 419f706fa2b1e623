/* ganforge static site: runs model.onnx in the browser with onnxruntime-web (WebAssembly backend).
 *
 * Needs, next to index.html: model.json (ganforge model_info), model.onnx, latent.js (GanforgeLatent,
 * the port of ganforge.latent) and ort/ (onnxruntime-web's ort.wasm.min.js + its .mjs/.wasm runtime).
 * Single-threaded WASM, so no cross-origin isolation headers are needed: any static file server works.
 *
 * For scripts and tests, window.ganforge = {
 *   ready: Promise<info>                       resolves once the model is loaded (rejects with the error shown)
 *   info                                       model.json
 *   generate({seed, cls, caption, truncation, codes})   -> Promise<{pixels, shape, latent}>
 *   interpolate({seedA, seedB, t, cls, caption, truncation, codes}) -> Promise<{pixels, shape, latent}>
 *   (caption: a text model's index into model.json's site.captions, the captions the page offers)
 *   settled()                                  -> Promise<last result> once every queued render is drawn
 *   lastPixels, lastShape                      what the canvas shows now
 *   toPixels(chwFloats, C, H, W), latent       the pixel conversion and GanforgeLatent
 * }
 * `truncation` is psi in (0, 1]: it scales the seed's noise z, or, for a model whose model.json says
 * truncation.space "w" (stylegan), it is the graph's `truncation` input (w_avg + psi (w - w_avg)) and z stays
 * as drawn; left out, it is 1 (none), or such a model's truncation.default. A model whose model.json says
 * truncation.space "none" (progan) has no truncation trick: the page hides the control and the API rejects
 * psi != 1 with the reason, as the Python sampler does.
 * `pixels` is a Uint8Array of H*W*C values in HWC order (row-major, channels last; C = 1 grey or 3 RGB),
 * round((x + 1) * 127.5) of the output clamped to [-1, 1] in float32 with ties to even, exactly like
 * ganforge.image.to_uint8; `shape` is [H, W, C]. generate/interpolate also draw on the page.
 */
(function () {
  "use strict";
  var L = window.GanforgeLatent;
  var MAX_SEED = 2147483647;
  var $ = function (id) { return document.getElementById(id); };
  var state = { info: null, session: null, last: null, loaded: false };

  function setStatus(text, kind) {
    var el = $("status");
    el.textContent = text;
    el.className = kind || "";
  }

  function showError(err) {
    var msg = err && err.message ? err.message : String(err);
    setStatus("Error: " + msg, "error");
    if (window.console) console.error("ganforge:", msg);
  }

  window.addEventListener("error", function (e) { showError(e.error || e.message); });
  window.addEventListener("unhandledrejection", function (e) { showError(e.reason); });

  /* ---- model ---- */

  async function load() {
    if (location.protocol === "file:") {
      throw new Error("browsers do not let a page opened as a file load its model: serve this folder, e.g. " +
                      "`python -m http.server -d SITE_FOLDER 8080`, then open http://127.0.0.1:8080/");
    }
    if (!L) throw new Error("latent.js did not load: keep it next to index.html");
    if (typeof ort === "undefined") throw new Error("ort/ort.wasm.min.js did not load: keep the ort/ folder next to index.html");
    var resp = await fetch("model.json");
    if (!resp.ok) throw new Error("model.json: HTTP " + resp.status + " (keep it next to index.html)");
    var info = await resp.json();
    state.info = info;
    describe(info);
    ort.env.wasm.numThreads = 1;    // no SharedArrayBuffer, so no COOP/COEP headers needed
    ort.env.wasm.proxy = false;
    ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;  // "ort/" made absolute: import() needs it
    ort.env.logLevel = "error";
    var mb = info.site && info.site.onnx_bytes ? " (" + (info.site.onnx_bytes / 1048576).toFixed(1) + " MB)" : "";
    setStatus("Loading the model" + mb + " and the WebAssembly runtime…");
    try {
      state.session = await ort.InferenceSession.create("model.onnx", { executionProviders: ["wasm"] });
    } catch (e) {
      throw new Error("could not start the model with onnxruntime-web's WebAssembly runtime (needs WebAssembly " +
                      "SIMD; are model.onnx and ort/ next to index.html?): " + (e && e.message ? e.message : e));
    }
    buildControls(info);
    state.loaded = true;
    return info;
  }

  function describe(info) {
    var title = "ganforge · " + (info.title || info.family);
    document.title = title;
    $("title").textContent = title;
    var shape = info.shape.join("×"), parts = [info.family + " generator", "output " + shape];
    if (info.conditional) parts.push(info.n_classes + " classes");
    if (info.latent.codes.length) parts.push("latent codes " + info.latent.codes.map(function (c) { return c.name; }).join(", "));
    if (wSpace()) parts.push("truncation in w");
    if (noTruncation()) parts.push("no truncation trick");
    parts.push("step " + info.step);
    $("subtitle").textContent = parts.join(" · ") + " — running in your browser (onnxruntime-web " +
      ((info.site && info.site.ort_version) || "") + ", WebAssembly).";
  }

  function checkSeed(seed, what) {
    if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
      throw new Error((what || "seed") + " must be a whole number in 0.." + MAX_SEED + ", got " + seed);
    }
    return seed;
  }

  function checkCaption(cap) {
    var caps = state.info.site && state.info.site.captions;
    if (!state.info.text || !caps) return null;
    cap = cap === undefined || cap === null ? 0 : cap;
    if (!Number.isInteger(cap) || cap < 0 || cap >= caps.length) {
      throw new Error("caption must be an index in 0.." + (caps.length - 1) + ", got " + cap);
    }
    return cap;
  }

  function checkClass(cls) {
    var info = state.info;
    if (!info.conditional) return null;
    cls = cls === undefined || cls === null ? 0 : cls;
    if (typeof cls === "string" && info.class_names.indexOf(cls) >= 0) cls = info.class_names.indexOf(cls);
    if (!Number.isInteger(cls) || cls < 0 || cls >= info.n_classes) {
      throw new Error("class must be an index in 0.." + (info.n_classes - 1) + " or a class name, got " + cls);
    }
    return cls;
  }

  function roundHalfEven(v) {
    var f = Math.floor(v), d = v - f;
    return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
  }

  /* (1, C, H, W) float output in [-1, 1] -> HWC uint8, like ganforge.image.to_uint8 (float32 steps). */
  function toPixels(data, c, h, w) {
    var px = new Uint8Array(h * w * c), plane = h * w;
    for (var ch = 0; ch < c; ch++) {
      for (var i = 0; i < plane; i++) {
        var x = Math.min(Math.max(data[ch * plane + i], -1), 1);
        px[i * c + ch] = roundHalfEven(Math.fround(Math.fround(x + 1) * 127.5));
      }
    }
    return px;
  }

  /* "w": the model takes psi as its graph input `truncation` (stylegan); "z": psi scales the seed's noise;
     "none": the model has no truncation trick (progan) and psi != 1 is refused. */
  function wSpace() {
    var t = state.info.truncation;
    return !!(t && t.space === "w");
  }

  function noTruncation() {
    var t = state.info.truncation;
    return !!(t && t.space === "none");
  }

  async function runModel(z, cls, psi, cap) {
    var info = state.info, feeds = { z: new ort.Tensor("float32", z, [1, info.latent.width]) };
    if (info.conditional) feeds.y = new ort.Tensor("int64", BigInt64Array.from([BigInt(cls)]), [1]);
    if (info.text) {  // a stored caption's embedding (the page carries no text encoder)
      feeds.text_emb = new ort.Tensor("float32", Float32Array.from(info.site.captions[cap].embedding), [1, info.text.dim]);
    }
    if (wSpace()) feeds.truncation = new ort.Tensor("float32", Float32Array.from([psi]), [1]);
    var out = (await state.session.run(feeds))[info.output];
    var c = info.shape[0], h = info.shape[1], w = info.shape[2];
    return { pixels: toPixels(out.data, c, h, w), shape: [h, w, c], latent: z };
  }

  function latentOf(seed, truncation, codes) {
    var info = state.info, lat = info.latent;
    var z = L.seededLatents(seed, 1, lat.noise_dim, lat.codes, noiseScale(truncation));
    return codes && Object.keys(codes).length ? L.setCodes(z, lat.codes, lat.noise_dim, codes) : z;
  }

  function defaultTruncation() { return wSpace() ? Number(state.info.truncation["default"]) : 1; }

  function truncationOf(t) {
    var psi = t === undefined || t === null ? defaultTruncation() : Number(t);
    if (wSpace() && !(psi >= 0 && psi <= 1)) throw new Error("truncation must be in [0, 1], got " + t);
    if (noTruncation() && psi !== 1) {  // the words of ganforge.latent.no_truncation_message
      var reason = state.info.truncation.reason;
      throw new Error(state.info.family + " has no truncation trick" + (reason ? ": " + reason : "") +
                      "; truncation " + t + " would give the same images as 1, so use truncation 1 or leave it out");
    }
    return psi;
  }

  /* the factor on the seed's noise: psi, or 1 for a model that truncates in w (psi goes to the graph) or has
     no truncation trick (psi is 1 there) */
  function noiseScale(psi) { return wSpace() || noTruncation() ? 1 : psi; }

  /* Renders run one at a time (an InferenceSession runs one call at a time). */
  var chain = Promise.resolve();
  function enqueue(task) {
    var p = chain.then(task);
    chain = p.catch(function () {});
    return p;
  }

  async function generate(opts) {
    opts = opts || {};
    await api.ready;
    var seed = checkSeed(opts.seed === undefined ? 0 : opts.seed), cls = checkClass(opts.cls), cap = checkCaption(opts.caption);
    var psi = truncationOf(opts.truncation), z = latentOf(seed, psi, opts.codes);
    var caption = "seed " + seed + (cls === null ? "" : " · class " + cls + " (" + state.info.class_names[cls] + ")")
      + (cap === null ? "" : " · \u201c" + state.info.site.captions[cap].text + "\u201d");
    return enqueue(async function () { return draw(await runModel(z, cls, psi, cap), caption, "seed" + seed + (cls === null ? "" : "-class" + cls) + (cap === null ? "" : "-caption" + cap)); });
  }

  async function interpolate(opts) {
    opts = opts || {};
    await api.ready;
    var a = checkSeed(opts.seedA, "seed A"), b = checkSeed(opts.seedB, "seed B"), t = Number(opts.t);
    if (!(t >= 0 && t <= 1)) throw new Error("t must be in [0, 1], got " + opts.t);
    var cls = checkClass(opts.cls), cap = checkCaption(opts.caption), lat = state.info.latent, psi = truncationOf(opts.truncation), trunc = noiseScale(psi);
    var za = L.seededLatents(a, 1, lat.noise_dim, lat.codes, trunc), zb = L.seededLatents(b, 1, lat.noise_dim, lat.codes, trunc);
    var z = L.between(za, zb, t, lat.noise_dim);
    if (opts.codes && Object.keys(opts.codes).length) z = L.setCodes(z, lat.codes, lat.noise_dim, opts.codes);
    var caption = "seed " + a + " → seed " + b + " at t = " + t.toFixed(2) + (cls === null ? "" : " · class " + cls);
    return enqueue(async function () { return draw(await runModel(z, cls, psi, cap), caption, "seed" + a + "-to-" + b + "-t" + t.toFixed(2)); });
  }

  /* ---- drawing ---- */

  function draw(result, caption, name) {
    var h = result.shape[0], w = result.shape[1], c = result.shape[2];
    var canvas = $("out");
    canvas.width = w;
    canvas.height = h;
    canvas.style.height = Math.round(320 * h / w) + "px";
    var ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h), px = result.pixels;
    for (var i = 0; i < w * h; i++) {
      img.data[4 * i] = px[i * c];
      img.data[4 * i + 1] = px[i * c + (c === 3 ? 1 : 0)];
      img.data[4 * i + 2] = px[i * c + (c === 3 ? 2 : 0)];
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    // the download is upscaled with nearest neighbour to at least 256 px, like the view
    var scale = Math.max(1, Math.ceil(256 / Math.max(w, h))), big = document.createElement("canvas");
    big.width = w * scale;
    big.height = h * scale;
    var bctx = big.getContext("2d");
    bctx.imageSmoothingEnabled = false;
    bctx.drawImage(canvas, 0, 0, big.width, big.height);
    var link = $("download");
    link.href = big.toDataURL("image/png");
    link.download = "ganforge-" + name + ".png";
    link.removeAttribute("aria-disabled");
    $("caption").textContent = caption;
    state.last = result;
    return result;
  }

  /* ---- controls ---- */

  function intField(id) { return Number($(id).value.trim() === "" ? NaN : $(id).value); }

  function fixedCodes() {
    var codes = {};
    state.info.latent.codes.forEach(function (code) {
      var el = $("code-" + code.name), fix = $("fix-" + code.name);
      if (code.kind === "categorical" && el.value !== "") codes[code.name] = Number(el.value);
      if (code.kind !== "categorical" && fix.checked) codes[code.name] = Number(el.value);
    });
    return codes;
  }

  function common() {
    return { cls: state.info.conditional ? Number($("class").value) : null,
             caption: state.info.text ? Number($("prompt").value) : null,
             truncation: noTruncation() ? undefined : Number($("truncation").value), codes: fixedCodes() };
  }

  var mode = "seed";
  function refresh() {
    var opts = common();
    var job = mode === "seed"
      ? generate(Object.assign(opts, { seed: intField("seed") }))
      : interpolate(Object.assign(opts, { seedA: intField("seed-a"), seedB: intField("seed-b"), t: Number($("t").value) }));
    return job.then(function (r) { setStatus("Ready", "ready"); return r; }, function (e) { showError(e); });
  }

  function row(labelText, forId) {
    var div = document.createElement("div"), label = document.createElement("label");
    div.className = "row";
    label.textContent = labelText;
    label.htmlFor = forId;
    div.appendChild(label);
    return div;
  }

  function buildControls(info) {
    if (info.text && info.site && info.site.captions) {
      var pick = $("prompt");
      info.site.captions.forEach(function (c, k) {
        var opt = document.createElement("option");
        opt.value = String(k);
        opt.textContent = c.text;
        pick.appendChild(opt);
      });
      $("prompt-row").hidden = false;
      pick.addEventListener("change", refresh);
    }
    if (info.conditional) {
      var select = $("class");
      info.class_names.forEach(function (name, k) {
        var opt = document.createElement("option");
        opt.value = String(k);
        opt.textContent = k + ": " + name;
        select.appendChild(opt);
      });
      $("class-row").hidden = false;
      select.addEventListener("change", refresh);
    }
    info.latent.codes.forEach(function (code) {
      var div, el;
      if (code.kind === "categorical") {
        div = row(code.name + " (" + code.size + ")", "code-" + code.name);
        el = document.createElement("select");
        el.innerHTML = "<option value=''>from seed</option>";
        for (var k = 0; k < code.size; k++) el.insertAdjacentHTML("beforeend", "<option value='" + k + "'>" + k + "</option>");
        el.id = "code-" + code.name;
        el.addEventListener("change", refresh);
        div.appendChild(el);
      } else {
        div = row(code.name, "code-" + code.name);
        var fix = document.createElement("input"), out = document.createElement("output"), fixLabel = document.createElement("label");
        fix.type = "checkbox";
        fix.id = "fix-" + code.name;
        fix.title = "fix " + code.name + " (unchecked: the seed's value)";
        fixLabel.style.minWidth = "0";
        fixLabel.appendChild(fix);
        fixLabel.appendChild(document.createTextNode(" fix"));
        el = document.createElement("input");
        el.type = "range"; el.min = "-2"; el.max = "2"; el.step = "0.05"; el.value = "0";
        el.id = "code-" + code.name;
        out.textContent = "seed";
        el.addEventListener("input", function () { fix.checked = true; out.textContent = Number(el.value).toFixed(2); refresh(); });
        fix.addEventListener("change", function () { out.textContent = fix.checked ? Number(el.value).toFixed(2) : "seed"; refresh(); });
        div.appendChild(fixLabel); div.appendChild(el); div.appendChild(out);
      }
      $("codes").appendChild(div);
    });
    $("generate").addEventListener("click", function () { mode = "seed"; refresh(); });
    $("random").addEventListener("click", function () {
      $("seed").value = String(Math.floor(Math.random() * (MAX_SEED + 1)));
      mode = "seed";
      refresh();
    });
    $("seed").addEventListener("keydown", function (e) { if (e.key === "Enter") { mode = "seed"; refresh(); } });
    var slider = $("truncation");
    if (noTruncation()) {  // nothing to set: the control is hidden and disabled, its title says why
      $("truncation-row").hidden = true;
      slider.disabled = true;
    }
    if (wSpace()) {  // start at the model's own psi; the slider's lowest step stands for anything below it
      slider.value = String(Math.max(Number(slider.min), defaultTruncation()));
      $("truncation-value").textContent = Number(slider.value).toFixed(2);
    }
    slider.title = wSpace() ? "psi: moves w towards the average w, w_avg + psi (w - w_avg); 1 = none"
                 : noTruncation() ? "this model has no truncation trick: " + (state.info.truncation.reason || "")
                 : "psi: scales the noise z towards its mean; 1 = none";
    $("truncation").addEventListener("input", function () {
      $("truncation-value").textContent = Number($("truncation").value).toFixed(2);
      refresh();
    });
    $("t").addEventListener("input", function () {
      $("t-value").textContent = Number($("t").value).toFixed(2);
      mode = "interpolate";
      refresh();
    });
    ["seed-a", "seed-b"].forEach(function (id) { $(id).addEventListener("change", function () { mode = "interpolate"; refresh(); }); });
    $("generate").disabled = false;
    $("random").disabled = false;
  }

  var api = {
    info: null,
    generate: generate,
    interpolate: interpolate,
    settled: function () { return chain.then(function () { return state.last; }); },
    latent: L,
    toPixels: toPixels,
    get lastPixels() { return state.last ? state.last.pixels : null; },
    get lastShape() { return state.last ? state.last.shape : null; },
  };
  api.ready = load().then(function (info) {
    api.info = info;
    setStatus("Ready", "ready");
    refresh();
    return info;
  });
  api.ready.catch(showError);
  window.ganforge = api;
})();
