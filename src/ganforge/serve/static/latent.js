/* ganforge latent recipe in JavaScript: the port of ganforge.latent (src/ganforge/latent.py).
 *
 * A plain script (no module): <script src="latent.js"></script> defines the global `GanforgeLatent`;
 * under node, require("./latent.js") returns the same object. Every function mirrors its Python twin and
 * gives the same float32 numbers (within float32 rounding, ~1e-7):
 *
 *   seededLatents(seed, n, noiseDim, codes = [], truncation = 1) -> Float32Array(n * width), row-major
 *   setCodes(latent, codes, noiseDim, {name: value})               -> a copy with codes fixed on every row
 *   between(a, b, t, noiseDim)                                     -> Float32Array(width): slerp noise, lerp codes
 *   latentWidth(noiseDim, codes), uniforms(seed, rows, count), mix(x), MAX_SEED
 *
 * `codes` is model.json's latent.codes: [{name, kind: "categorical"|"continuous", size}].
 * The recipe (see latent.py): key = mix(mix(seed) + row), bits = mix(key ^ mix(j + 0x9E3779B9)),
 * u = (bits + 0.5) / 2^32; Box-Muller on pairs of uniforms in float64; then the codes, one uniform each.
 */
(function (root) {
  "use strict";

  var MAX_SEED = 2147483647;
  var TWO32 = 4294967296;

  /* lowbias32 (C. Wellons, 2018) on 32-bit unsigned integers. */
  function mix(x) {
    x = x >>> 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d);
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b);
    x ^= x >>> 16;
    return x >>> 0;
  }

  function checkSeed(seed) {
    if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
      throw new Error("seed must be an integer in 0.." + MAX_SEED + ", got " + seed);
    }
  }

  /* Array of `rows` Float64Arrays of `count` uniforms in (0, 1): rows firstRow.. of `seed`. */
  function uniforms(seed, rows, count, firstRow) {
    checkSeed(seed);
    firstRow = firstRow || 0;
    var base = mix(seed), js = new Array(count), out = [];
    for (var j = 0; j < count; j++) js[j] = mix((j + 0x9e3779b9) >>> 0);
    for (var r = 0; r < rows; r++) {
      var key = mix((base + firstRow + r) >>> 0), row = new Float64Array(count);
      for (var k = 0; k < count; k++) row[k] = ((mix((key ^ js[k]) >>> 0)) + 0.5) / TWO32;
      out.push(row);
    }
    return out;
  }

  function codeWidth(code) {
    return code.kind === "categorical" ? Number(code.size) : 1;
  }

  function latentWidth(noiseDim, codes) {
    var w = noiseDim;
    (codes || []).forEach(function (c) { w += codeWidth(c); });
    return w;
  }

  /* The (n, width) generator inputs of a seed, as one row-major Float32Array. */
  function seededLatents(seed, n, noiseDim, codes, truncation) {
    codes = codes || [];
    truncation = truncation === undefined ? 1 : truncation;
    if (!(n >= 1)) throw new Error("n must be >= 1, got " + n);
    if (!(truncation > 0 && truncation <= 1)) throw new Error("truncation must be in (0, 1], got " + truncation);
    var pairs = (noiseDim + 1) >> 1, width = latentWidth(noiseDim, codes);
    var u = uniforms(seed, n, 2 * pairs + codes.length, 0);
    var out = new Float32Array(n * width);
    for (var r = 0; r < n; r++) {
      var row = u[r], at = r * width;
      for (var i = 0; i < pairs; i++) {
        var radius = Math.sqrt(-2 * Math.log(row[2 * i])), angle = 2 * Math.PI * row[2 * i + 1];
        out[at + 2 * i] = radius * Math.cos(angle) * truncation;
        if (2 * i + 1 < noiseDim) out[at + 2 * i + 1] = radius * Math.sin(angle) * truncation;
      }
      var offset = at + noiseDim;
      for (var c = 0; c < codes.length; c++) {
        var v = row[2 * pairs + c];
        if (codes[c].kind === "categorical") {
          var k = Number(codes[c].size);
          out[offset + Math.min(Math.floor(v * k), k - 1)] = 1;
          offset += k;
        } else {
          out[offset] = 2 * v - 1;
          offset += 1;
        }
      }
    }
    return out;
  }

  /* A copy of `latent` (n rows, flat) with codes fixed on every row: {name: category index | value}. */
  function setCodes(latent, codes, noiseDim, values) {
    var width = latentWidth(noiseDim, codes), out = new Float32Array(latent);
    if (out.length % width !== 0) throw new Error("latent length " + out.length + " is not a multiple of width " + width);
    var byName = {}, offset = noiseDim;
    codes.forEach(function (c) { byName[c.name] = [c, offset]; offset += codeWidth(c); });
    Object.keys(values || {}).forEach(function (name) {
      if (!(name in byName)) {
        throw new Error("this model has no code '" + name + "'; its codes are: " + (Object.keys(byName).join(", ") || "none"));
      }
      var code = byName[name][0], pos = byName[name][1], value = Number(values[name]);
      for (var r = 0; r < out.length / width; r++) {
        var at = r * width + pos;
        if (code.kind === "categorical") {
          var k = Number(code.size);
          if (!Number.isInteger(value) || value < 0 || value >= k) {
            throw new Error("code " + name + " is categorical: give an integer in 0.." + (k - 1) + ", got " + values[name]);
          }
          for (var q = 0; q < k; q++) out[at + q] = 0;
          out[at + value] = 1;
        } else {
          out[at] = value;
        }
      }
    });
    return out;
  }

  /* The latent a fraction t of the way from row a to row b: slerp of the noise (White 2016), lerp of the
   * codes; float64 arithmetic, float32 out. */
  function between(a, b, t, noiseDim) {
    var dot = 0, na = 0, nb = 0, i;
    for (i = 0; i < noiseDim; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
    var cos = dot / (Math.sqrt(na) * Math.sqrt(nb));
    var omega = Math.acos(Math.min(Math.max(cos, -1 + 1e-7), 1 - 1e-7)), s = Math.sin(omega);
    var wa = Math.sin((1 - t) * omega) / s, wb = Math.sin(t * omega) / s;
    var out = new Float32Array(a.length);
    for (i = 0; i < noiseDim; i++) out[i] = wa * a[i] + wb * b[i];
    for (i = noiseDim; i < a.length; i++) out[i] = (1 - t) * a[i] + t * b[i];
    return out;
  }

  var api = {
    MAX_SEED: MAX_SEED, mix: mix, uniforms: uniforms, latentWidth: latentWidth,
    seededLatents: seededLatents, setCodes: setCodes, between: between,
  };
  if (typeof module === "object" && module.exports) module.exports = api;
  root.GanforgeLatent = api;
})(typeof globalThis !== "undefined" ? globalThis : this);
