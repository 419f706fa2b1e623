// The playground page of `ganforge serve`: every image comes from the server's /v1 API.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, busy: null, pending: null, lastPng: null, requests: 0 };
window.playground = state; // read by the browser tests

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

// "none": the model has no truncation trick (progan); the server refuses psi != 1, so none is sent
const noTruncation = (info) => !!(info && info.truncation && info.truncation.space === "none");

const isAudio = () => !!(state.info && state.info.kind === "audio");

function common() {
  const body = { format: isAudio() ? "wav" : "png" };
  if (!noTruncation(state.info)) body.truncation = parseFloat($("truncation").value);
  if (state.info && state.info.conditional) body["class"] = parseInt($("class").value, 10);
  const codes = {};
  for (const el of document.querySelectorAll("[data-code]")) codes[el.dataset.code] = parseFloat(el.value);
  if (Object.keys(codes).length) body.codes = codes;
  return body;
}

// One request at a time; a newer request replaces one that has not started yet (slider drags stay snappy).
async function request(path, body) {
  state.pending = { path, body };
  if (state.busy) return state.busy;
  state.busy = (async () => {
    while (state.pending) {
      const job = state.pending;
      state.pending = null;
      setStatus("generating…");
      try {
        const res = await fetch(job.path, {
          method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(job.body),
        });
        if (!res.ok) {
          const err = await res.json().catch(() => ({ detail: res.statusText }));
          setStatus(`error ${res.status}: ${err.detail}`, true);
          continue;
        }
        const blob = await res.blob();
        const bytes = new Uint8Array(await blob.arrayBuffer());
        let bin = "";
        for (const b of bytes) bin += String.fromCharCode(b);
        const url = URL.createObjectURL(blob);
        const audio = (res.headers.get("content-type") || "").startsWith("audio/");
        const el = audio ? $("player") : $("out");
        if (el.dataset.url) URL.revokeObjectURL(el.dataset.url);
        el.dataset.url = url;
        el.src = url;
        if (audio) state.lastWav = btoa(bin); else state.lastPng = btoa(bin);
        state.requests += 1;
        $("download").href = url;
        const seed = res.headers.get("x-seed");
        $("download").download = `ganforge-${state.info.family}-${seed !== null ? "seed" + seed : "interp"}` +
          (audio ? ".wav" : ".png");
        setStatus(job.path.endsWith("generate") ? `seed ${seed}` : job.path.endsWith("edit")
          ? `${job.body.direction}, t = ${job.body.t}` : `t = ${job.body.t}`);
      } catch (e) {
        setStatus(`request failed: ${e}`, true);
      }
    }
    state.busy = null;
  })();
  return state.busy;
}

function generate() {
  const seed = parseInt($("seed").value, 10);
  return request("/v1/generate", { ...common(), n: 1, seed: Number.isFinite(seed) ? seed : 0 });
}

function interpolate() {
  const t = parseFloat($("t").value);
  $("t-value").textContent = t.toFixed(2);
  return request("/v1/interpolate", {
    ...common(), seed_a: parseInt($("seed-a").value, 10) || 0, seed_b: parseInt($("seed-b").value, 10) || 0, t,
  });
}

function codeControls(codes) {
  const box = $("codes");
  for (const code of codes) {
    const label = document.createElement("label");
    let input;
    if (code.kind === "categorical") {
      input = document.createElement("select");
      for (let k = 0; k < code.size; k++) input.add(new Option(`${code.name} = ${k}`, String(k)));
      label.textContent = `${code.name} (category)`;
    } else {
      input = document.createElement("input");
      Object.assign(input, { type: "range", min: "-1", max: "1", step: "0.05", value: "0" });
      label.textContent = `${code.name} (continuous, -1 … 1)`;
    }
    input.dataset.code = code.name;
    input.addEventListener("change", generate);
    box.append(label, input);
  }
}

// Upload -> /v1/project (the image's latent) -> /v1/edit along a direction (serve/latent_api.py)
function showPng(b64) {
  const img = $("out");
  if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
  delete img.dataset.url;
  img.src = `data:image/png;base64,${b64}`;
  $("download").href = img.src;
  state.lastPng = b64;
}

async function project() {
  const file = $("upload").files[0];
  if (!file) return;
  const bytes = new Uint8Array(await file.arrayBuffer());
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  $("project").disabled = true;
  setStatus("projecting… (a few seconds)");
  try {
    const res = await fetch("/v1/project", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ image: btoa(bin), steps: parseInt($("project-steps").value, 10) || 100 }),
    });
    const body = await res.json().catch(() => ({ detail: res.statusText }));
    if (!res.ok) {
      setStatus(`error ${res.status}: ${body.detail}`, true);
      return;
    }
    state.pending = null;  // a generate/edit queued before the projection must not replace it
    if (state.busy) await state.busy;
    state.projected = body;
    showPng(body.image);
    $("project-result").textContent = `latent in ${body.space}, pixel MSE ${body.pixel_mse.toFixed(4)}, ` +
      `${body.steps} steps in ${body.seconds.toFixed(1)} s`;
    $("edit-t").disabled = !$("direction").value;
    $("edit-t").value = "0";
    $("edit-t-value").textContent = "0.00";
    setStatus("projected: move t to edit");
  } catch (e) {
    setStatus(`request failed: ${e}`, true);
  } finally {
    $("project").disabled = false;
  }
}

function directionName() {
  const d = $("direction").value;
  return d === "class" ? `class:${$("class-a").value}:${$("class-b").value}` : d;
}

function edit() {
  const t = parseFloat($("edit-t").value);
  $("edit-t-value").textContent = t.toFixed(2);
  if (!state.projected) return null;
  return request("/v1/edit", { latent: state.projected.latent, direction: directionName(), t, format: "png" });
}

function editControls(tools) {
  $("edit-box").classList.remove("hidden");
  $("project-steps").max = String(tools.max_steps);
  for (const d of tools.directions) $("direction").add(new Option(d.label, d.name));
  if (tools.class_directions) {
    $("direction").add(new Option("class A → class B (vector arithmetic)", "class"));
    tools.class_names.forEach((name, i) => {
      $("class-a").add(new Option(`${i}: ${name}`, String(i)));
      $("class-b").add(new Option(`${i}: ${name}`, String(i)));
    });
    $("class-b").value = "1";
  }
  const showPair = () => $("class-pair").classList.toggle("hidden", $("direction").value !== "class");
  $("direction").addEventListener("change", () => {
    showPair();
    edit();
  });
  showPair();  // "class" may be the only direction
  if (!$("direction").options.length) $("direction").add(new Option("no directions for this model", ""));
  for (const id of ["class-a", "class-b"]) $(id).addEventListener("change", edit);
  $("upload").addEventListener("change", () => { $("project").disabled = !$("upload").files.length; });
  $("project").addEventListener("click", project);
  $("edit-t").addEventListener("input", edit);
}

async function init() {
  try {
    const res = await fetch("/v1/info");
    state.info = await res.json();
  } catch (e) {
    setStatus(`cannot reach the server: ${e}`, true);
    return;
  }
  const info = state.info;
  $("title").textContent = `ganforge playground: ${info.family}`;
  $("subtitle").textContent = `${info.kind} ${info.shape.join("x")}, step ${info.step}` +
    (info.conditional ? `, ${info.n_classes} classes` : "") + `; up to ${info.max_n} images per API request`;
  if (info.kind === "table") {
    setStatus('this model makes table rows: POST /v1/generate {"n": 10, "seed": 0, "format": "json"} (or "csv")', true);
    return;
  }
  if (info.kind === "audio") {  // clips: an <audio> player instead of the image, WAV downloads
    $("out").classList.add("hidden");
    $("player").classList.remove("hidden");
    $("download").textContent = "Download WAV";
    $("truncation-box").classList.add("hidden");
  } else if (info.kind !== "image") {
    setStatus("this model makes points, not images: use the API (format json or npy)", true);
    return;
  }
  if (info.conditional) {
    $("class-box").classList.remove("hidden");
    info.class_names.forEach((name, i) => $("class").add(new Option(`${i}: ${name}`, String(i))));
    $("class").addEventListener("change", generate);
  }
  codeControls(info.latent.codes || []);
  if (info.latent_tools) editControls(info.latent_tools);
  const wSpace = !!(info.truncation && info.truncation.space === "w");  // stylegan: psi acts on w, in the model
  if (wSpace) {  // start at the model's own psi (model.truncation)
    $("truncation").value = String(Math.max(parseFloat($("truncation").min), info.truncation.default));
    $("truncation-value").textContent = parseFloat($("truncation").value).toFixed(2);
  }
  if (noTruncation(info)) {  // hidden and disabled: psi would change nothing
    $("truncation-box").classList.add("hidden");
    $("truncation").disabled = true;
  }
  $("truncation").title = wSpace ? "psi: moves w towards the average w, w_avg + psi (w - w_avg); 1 = none"
    : noTruncation(info) ? `this model has no truncation trick: ${info.truncation.reason || ""}`
    : "psi: scales the noise z towards its mean; 1 = none";
  $("truncation").addEventListener("input", () => {
    $("truncation-value").textContent = parseFloat($("truncation").value).toFixed(2);
  });
  $("truncation").addEventListener("change", generate);
  $("generate").addEventListener("click", generate);
  $("random").addEventListener("click", () => {
    $("seed").value = String(Math.floor(Math.random() * 2147483647));
    generate();
  });
  $("seed").addEventListener("change", generate);
  $("t").addEventListener("input", interpolate);
  for (const id of ["seed-a", "seed-b"]) $(id).addEventListener("change", interpolate);
  await generate();
  state.ready = true;
}

init();
