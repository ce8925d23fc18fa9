/* rbmvae explorer: runs the exported RBMs and VAEs in the page (written by rbmvae/explore.py).
 *
 * No framework, no network. The only global is one namespaced object, window.rbmvaeExplorer;
 * each copy of the fragment on a page becomes one entry of its `instances`. Every element is
 * found inside the fragment's own root by a class carrying the fragment's prefix.
 *
 * The maths follows the Python package: RBM p(h | v) and p(v | h) (Eqs. 1.5, 1.6), clamped Gibbs
 * sampling (Eq. 5.2); VAE encoder, reparameterization (Eq. 2.3) and decoder, pseudo-Gibbs
 * sampling (Eq. 5.3). Weights are float32 (or float16 when the page would be too large) and the
 * arithmetic is done in double precision on them.
 */
(function () {
  "use strict";

  var NAMESPACE = "rbmvaeExplorer";

  // ---------------------------------------------------------------------------------------------
  // weights

  function base64Bytes(text) {
    var binary = atob(text);
    var n = binary.length;
    var out = new Uint8Array(n);
    for (var i = 0; i < n; i++) out[i] = binary.charCodeAt(i);
    return out;
  }

  function halfToFloat(bits) {
    var sign = bits & 0x8000 ? -1 : 1;
    var exponent = (bits >> 10) & 0x1f;
    var fraction = bits & 0x3ff;
    if (exponent === 0) return sign * fraction * Math.pow(2, -24);
    if (exponent === 31) return fraction ? NaN : sign * Infinity;
    return sign * (1 + fraction / 1024) * Math.pow(2, exponent - 15);
  }

  function readTensor(spec) {
    var n = spec.shape.reduce(function (a, b) { return a * b; }, 1);
    var bytes = base64Bytes(spec.data);
    var view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    var out = new Float32Array(n);
    var i;
    if (spec.dtype === "float32") {
      if (bytes.length !== 4 * n) throw new Error("tensor size does not match its shape");
      for (i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
    } else if (spec.dtype === "float16") {
      if (bytes.length !== 2 * n) throw new Error("tensor size does not match its shape");
      for (i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
    } else {
      throw new Error("unknown tensor dtype " + spec.dtype);
    }
    return out;
  }

  function sigmoid(x) {
    return 1 / (1 + Math.exp(-x));
  }

  // ---------------------------------------------------------------------------------------------
  // models: every method writes into buffers allocated once

  function RBM(spec) {
    var t = spec.tensors;
    this.kind = "rbm";
    this.name = spec.name;
    this.D = t.weight.shape[0];
    this.H = t.weight.shape[1];
    this.W = readTensor(t.weight); // D x H, row-major
    this.b = readTensor(t.visible_bias);
    this.c = readTensor(t.hidden_bias);
    this.hiddenBuffer = new Float64Array(this.H);
  }

  // p(h = 1 | v) = sigm(c + vW) (Eq. 1.5)
  RBM.prototype.hiddenProbs = function (v, out) {
    var D = this.D, H = this.H, W = this.W, i, j;
    for (j = 0; j < H; j++) out[j] = this.c[j];
    for (i = 0; i < D; i++) {
      var vi = v[i];
      if (vi === 0) continue;
      var offset = i * H;
      for (j = 0; j < H; j++) out[j] += vi * W[offset + j];
    }
    for (j = 0; j < H; j++) out[j] = sigmoid(out[j]);
  };

  // p(v = 1 | h) = sigm(b + W h) (Eq. 1.6)
  RBM.prototype.visibleProbs = function (h, out) {
    var D = this.D, H = this.H, W = this.W;
    for (var i = 0; i < D; i++) {
      var sum = this.b[i];
      var offset = i * H;
      for (var j = 0; j < H; j++) sum += W[offset + j] * h[j];
      out[i] = sigmoid(sum);
    }
  };

  RBM.prototype.startFill = function (out) {
    for (var i = 0; i < this.D; i++) out[i] = sigmoid(this.b[i]);
  };

  // v' = where(mask, sigm(b + sigm(c + vW) W'), v)
  RBM.prototype.meanFieldStep = function (v, mask, out) {
    this.hiddenProbs(v, this.hiddenBuffer);
    this.visibleProbs(this.hiddenBuffer, out);
    for (var i = 0; i < this.D; i++) if (!mask[i]) out[i] = v[i];
  };

  function Linear(layer) {
    this.nOut = layer.weight.shape[0];
    this.nIn = layer.weight.shape[1];
    this.W = readTensor(layer.weight); // out x in, row-major
    this.b = readTensor(layer.bias);
  }

  Linear.prototype.forward = function (x, out, relu) {
    var nIn = this.nIn, W = this.W;
    for (var o = 0; o < this.nOut; o++) {
      var sum = this.b[o];
      var offset = o * nIn;
      for (var i = 0; i < nIn; i++) sum += W[offset + i] * x[i];
      out[o] = relu && sum < 0 ? 0 : sum;
    }
  };

  function VAE(spec) {
    var t = spec.tensors;
    var layer = function (name) {
      return new Linear({ weight: t[name + ".weight"], bias: t[name + ".bias"] });
    };
    this.kind = "vae";
    this.name = spec.name;
    this.encoderHidden = layer("encoder_hidden");
    this.encoderMean = layer("encoder_mean");
    this.encoderLogVar = layer("encoder_log_var");
    this.decoderHidden = layer("decoder_hidden");
    this.decoderOutput = layer("decoder_output");
    this.D = this.encoderHidden.nIn;
    this.K = this.encoderMean.nOut;
    this.encodeBuffer = new Float64Array(this.encoderHidden.nOut);
    this.decodeBuffer = new Float64Array(this.decoderHidden.nOut);
    this.meanBuffer = new Float64Array(this.K);
    this.logVarBuffer = new Float64Array(this.K);
  }

  // (mean, log_var) of q(z | x)
  VAE.prototype.encode = function (x, mean, logVar) {
    this.encoderHidden.forward(x, this.encodeBuffer, true);
    this.encoderMean.forward(this.encodeBuffer, mean, false);
    if (logVar) this.encoderLogVar.forward(this.encodeBuffer, logVar, false);
  };

  // p(x = 1 | z)
  VAE.prototype.decode = function (z, out) {
    this.decoderHidden.forward(z, this.decodeBuffer, true);
    this.decoderOutput.forward(this.decodeBuffer, out, false);
    for (var i = 0; i < this.D; i++) out[i] = sigmoid(out[i]);
  };

  VAE.prototype.startFill = function (out) {
    this.meanBuffer.fill(0);
    this.decode(this.meanBuffer, out);
  };

  // v' = where(mask, decode(mean(encode(v))), v)
  VAE.prototype.meanFieldStep = function (v, mask, out) {
    this.encode(v, this.meanBuffer, null);
    this.decode(this.meanBuffer, out);
    for (var i = 0; i < this.D; i++) if (!mask[i]) out[i] = v[i];
  };

  function buildModel(spec) {
    if (spec.kind === "rbm") return new RBM(spec);
    if (spec.kind === "vae") return new VAE(spec);
    throw new Error("unknown model kind " + spec.kind);
  }

  // ---------------------------------------------------------------------------------------------
  // random numbers: mulberry32, seeded; normals by Box-Muller

  function makeRng(seed) {
    var state = seed >>> 0;
    var spare = null;
    var rng = function () {
      state = (state + 0x6d2b79f5) >>> 0;
      var t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    rng.normal = function () {
      if (spare !== null) {
        var value = spare;
        spare = null;
        return value;
      }
      var u = 0;
      while (u === 0) u = rng();
      var radius = Math.sqrt(-2 * Math.log(u));
      var angle = 2 * Math.PI * rng();
      spare = radius * Math.sin(angle);
      return radius * Math.cos(angle);
    };
    return rng;
  }

  // ---------------------------------------------------------------------------------------------
  // inpainting chains: observed pixels are copied from `image` and never change

  function Chain(model, image, mask, seed, burnIn) {
    var D = model.D;
    this.model = model;
    this.image = Float64Array.from(image);
    this.mask = Uint8Array.from(mask);
    this.rng = makeRng(seed);
    this.burnIn = Math.max(0, burnIn | 0);
    this.step = 0;
    this.count = 0;
    this.state = new Float64Array(D);
    this.probs = new Float64Array(D);
    this.total = new Float64Array(D);
    model.startFill(this.probs);
    for (var i = 0; i < D; i++) this.state[i] = this.mask[i] ? this.probs[i] : this.image[i];
    if (model.kind === "rbm") {
      this.hiddenProbs = new Float64Array(model.H);
      this.hidden = new Float64Array(model.H);
    } else {
      this.mean = new Float64Array(model.K);
      this.logVar = new Float64Array(model.K);
      this.z = new Float64Array(model.K);
    }
  }

  // One sweep: RBM h ~ p(h | v), p = p(v | h) (Eq. 5.2); VAE z ~ q(z | v), p = p(x | z) (Eq. 5.3);
  // then the missing pixels are drawn from Bernoulli(p).
  Chain.prototype.sweep = function () {
    var model = this.model, rng = this.rng, D = model.D, i, k;
    if (model.kind === "rbm") {
      model.hiddenProbs(this.state, this.hiddenProbs);
      for (k = 0; k < model.H; k++) this.hidden[k] = rng() < this.hiddenProbs[k] ? 1 : 0;
      model.visibleProbs(this.hidden, this.probs);
    } else {
      model.encode(this.state, this.mean, this.logVar);
      for (k = 0; k < model.K; k++) {
        this.z[k] = this.mean[k] + Math.exp(0.5 * this.logVar[k]) * rng.normal();
      }
      model.decode(this.z, this.probs);
    }
    this.step += 1;
    if (this.step > this.burnIn) {
      for (i = 0; i < D; i++) this.total[i] += this.probs[i];
      this.count += 1;
    }
    for (i = 0; i < D; i++) {
      this.state[i] = this.mask[i] ? (rng() < this.probs[i] ? 1 : 0) : this.image[i];
    }
  };

  // Observed pixels as given; missing ones the mean of p over the sweeps after burn-in (or the
  // current p while still burning in).
  Chain.prototype.estimate = function (out, current) {
    var useMean = !current && this.count > 0;
    for (var i = 0; i < this.model.D; i++) {
      if (!this.mask[i]) out[i] = this.image[i];
      else out[i] = useMean ? this.total[i] / this.count : this.probs[i];
    }
  };

  // ---------------------------------------------------------------------------------------------
  // drawing helpers

  var LABEL_COLOURS = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
  ];
  var MISSING_RGB = [64, 115, 217];

  function clamp01(x) {
    return x < 0 ? 0 : x > 1 ? 1 : x;
  }

  function paintImage(canvas, values, mask) {
    // tiny canvases: keep them in CPU memory, where reading them back is cheap
    var ctx = canvas.getContext("2d", { willReadFrequently: true });
    if (!canvas.rbmvaeImage) canvas.rbmvaeImage = ctx.createImageData(canvas.width, canvas.height);
    var data = canvas.rbmvaeImage.data;
    var n = canvas.width * canvas.height;
    for (var i = 0; i < n; i++) {
      var o = 4 * i;
      if (mask && mask[i]) {
        data[o] = MISSING_RGB[0];
        data[o + 1] = MISSING_RGB[1];
        data[o + 2] = MISSING_RGB[2];
      } else {
        var g = Math.round(255 * clamp01(values[i]));
        data[o] = g;
        data[o + 1] = g;
        data[o + 2] = g;
      }
      data[o + 3] = 255;
    }
    ctx.putImageData(canvas.rbmvaeImage, 0, 0);
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fmt(x, digits) {
    return (x >= 0 ? "\u2007" : "\u2212") + Math.abs(x).toFixed(digits);
  }

  // ---------------------------------------------------------------------------------------------
  // one explorer: the latent pad, the sliders and the inpainting canvas

  function createInstance(root) {
    var prefix = root.getAttribute("data-rbmvae-explorer");
    var q = function (name) { return root.querySelector("." + prefix + "-" + name); };
    var cls = function (name) { return prefix + "-" + name; };
    var payload = JSON.parse(q("data").textContent);
    var height = payload.imageShape[0], width = payload.imageShape[1];
    var D = height * width;
    var models = {};
    var order = [];
    payload.models.forEach(function (spec) {
      var model = buildModel(spec);
      if (model.D !== D) throw new Error(spec.name + ": " + model.D + " pixels, not " + D);
      model.label = spec.label;
      models[spec.name] = model;
      order.push(spec.name);
    });
    var instance = { root: root, models: models, modelNames: order.slice() };

    function model(name) {
      var m = models[name];
      if (!m) throw new Error("no model named " + name + " (have " + order.join(", ") + ")");
      return m;
    }

    if (payload.notes && payload.notes.length) {
      var notes = q("notes");
      payload.notes.forEach(function (text) { notes.appendChild(element("p", "", text)); });
      notes.hidden = false;
    }

    // -- latent pad (a VAE with a 2-D code) -----------------------------------------------------
    var latent = payload.latent;
    var padState = { model: null, z: [0, 0] };
    var padOutput = new Float64Array(D);
    var padZ = new Float64Array(2);
    if (latent && models[latent.model]) {
      var pad = q("pad");
      var padOut = q("pad-out");
      var readout = q("pad-readout");
      var R = latent.range;
      var background = document.createElement("canvas");
      background.width = pad.width;
      background.height = pad.height;
      var toX = function (z1) { return ((z1 + R) / (2 * R)) * pad.width; };
      var toY = function (z2) { return ((R - z2) / (2 * R)) * pad.height; };
      var drawBackground = function (manifold) {
        var ctx = background.getContext("2d");
        ctx.fillStyle = "#0d1117";
        ctx.fillRect(0, 0, background.width, background.height);
        if (manifold) {
          ctx.globalAlpha = 0.45;
          ctx.imageSmoothingEnabled = true;
          var lo = latent.manifoldExtent[0], hi = latent.manifoldExtent[1];
          ctx.drawImage(manifold, toX(lo), toY(hi), toX(hi) - toX(lo), toY(lo) - toY(hi));
          ctx.globalAlpha = 1;
        }
        ctx.strokeStyle = "rgba(255,255,255,0.18)";
        ctx.lineWidth = 1;
        for (var t = -Math.floor(R); t <= Math.floor(R); t++) {
          ctx.beginPath();
          ctx.moveTo(toX(t), 0);
          ctx.lineTo(toX(t), background.height);
          ctx.moveTo(0, toY(t));
          ctx.lineTo(background.width, toY(t));
          ctx.stroke();
        }
        var points = latent.points || { z: [], labels: [] };
        ctx.globalAlpha = 0.8;
        for (var i = 0; i < points.labels.length; i++) {
          ctx.fillStyle = LABEL_COLOURS[points.labels[i] % 10];
          ctx.fillRect(toX(points.z[2 * i]) - 1.5, toY(points.z[2 * i + 1]) - 1.5, 3, 3);
        }
        ctx.globalAlpha = 1;
        drawPad();
      };
      var drawPad = function () {
        var ctx = pad.getContext("2d");
        ctx.drawImage(background, 0, 0);
        var x = toX(padState.z[0]), y = toY(padState.z[1]);
        ctx.strokeStyle = "#ffffff";
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(x, y, 7, 0, 2 * Math.PI);
        ctx.moveTo(x - 12, y);
        ctx.lineTo(x + 12, y);
        ctx.moveTo(x, y - 12);
        ctx.lineTo(x, y + 12);
        ctx.stroke();
      };
      var decodePad = function (z1, z2) {
        padState.z = [z1, z2];
        padZ[0] = z1;
        padZ[1] = z2;
        var t0 = performance.now();
        models[latent.model].decode(padZ, padOutput);
        var elapsed = performance.now() - t0;
        paintImage(padOut, padOutput, null);
        drawPad();
        readout.textContent =
          "z = (" + fmt(z1, 2) + ", " + fmt(z2, 2) + ")  decoded in " + elapsed.toFixed(2) + " ms";
      };
      var fromPointer = function (event) {
        var rect = pad.getBoundingClientRect();
        var fx = (event.clientX - rect.left) / rect.width;
        var fy = (event.clientY - rect.top) / rect.height;
        var z1 = Math.max(-R, Math.min(R, -R + 2 * R * fx));
        var z2 = Math.max(-R, Math.min(R, R - 2 * R * fy));
        decodePad(z1, z2);
      };
      pad.addEventListener("pointermove", fromPointer);
      pad.addEventListener("pointerdown", fromPointer);
      pad.addEventListener("keydown", function (event) {
        var step = event.shiftKey ? 0.5 : 0.1;
        var move = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] }[event.key];
        if (!move) return;
        event.preventDefault();
        decodePad(
          Math.max(-R, Math.min(R, padState.z[0] + move[0])),
          Math.max(-R, Math.min(R, padState.z[1] + move[1]))
        );
      });
      var legend = q("legend");
      for (var label = 0; label < 10; label++) {
        var item = element("span", cls("legend-item"), String(label));
        var swatch = element("span", cls("swatch"));
        swatch.style.background = LABEL_COLOURS[label];
        item.insertBefore(swatch, item.firstChild);
        legend.appendChild(item);
      }
      padState.model = latent.model;
      q("pad-title").textContent = models[latent.model].label;
      drawBackground(null);
      decodePad(0, 0);
      if (latent.manifold) {
        var manifold = new Image();
        manifold.onload = function () { drawBackground(manifold); };
        manifold.src = latent.manifold;
      }
    } else {
      q("pad-block").hidden = true;
    }

    // -- sliders (VAEs with a code of more than 2 units) ----------------------------------------
    var sliderState = { model: null, z: [] };
    var sliderNames = order.filter(function (n) { return models[n].kind === "vae" && models[n].K !== 2; });
    var sliderOutput = new Float64Array(D);
    var sliderZ = null;
    var sliderInputs = [];
    var sliderRng = makeRng(12345);
    var sliderSelect = q("slider-model");
    var sliderBox = q("sliders");
    var sliderOut = q("slider-out");
    var sliderReadout = q("slider-readout");

    function decodeSliders() {
      var m = models[sliderState.model];
      for (var k = 0; k < m.K; k++) sliderZ[k] = sliderState.z[k];
      var t0 = performance.now();
      m.decode(sliderZ, sliderOutput);
      var elapsed = performance.now() - t0;
      paintImage(sliderOut, sliderOutput, null);
      sliderReadout.textContent = "decoded in " + elapsed.toFixed(2) + " ms";
    }

    function setSliders(values) {
      for (var k = 0; k < values.length; k++) {
        var v = Math.max(-3, Math.min(3, values[k]));
        sliderState.z[k] = v;
        sliderInputs[k].input.value = String(v);
        sliderInputs[k].value.textContent = fmt(v, 2);
      }
      decodeSliders();
    }

    function buildSliders(name) {
      var m = models[name];
      sliderState.model = name;
      sliderState.z = new Array(m.K).fill(0);
      sliderZ = new Float64Array(m.K);
      sliderInputs = [];
      sliderBox.textContent = "";
      for (var k = 0; k < m.K; k++) {
        var row = element("label", cls("slider-row"));
        row.appendChild(element("span", cls("slider-name"), "z" + (k + 1)));
        var input = element("input", cls("slider"));
        input.type = "range";
        input.min = "-3";
        input.max = "3";
        input.step = "0.01";
        input.value = "0";
        input.setAttribute("data-unit", String(k));
        var value = element("span", cls("slider-value"), fmt(0, 2));
        row.appendChild(input);
        row.appendChild(value);
        sliderBox.appendChild(row);
        sliderInputs.push({ input: input, value: value });
        input.addEventListener("input", (function (unit, out) {
          return function (event) {
            var v = Number(event.target.value);
            sliderState.z[unit] = v;
            out.textContent = fmt(v, 2);
            decodeSliders();
          };
        })(k, value));
      }
      decodeSliders();
    }

    if (sliderNames.length) {
      sliderNames.forEach(function (name) {
        var option = element("option", "", models[name].label);
        option.value = name;
        sliderSelect.appendChild(option);
      });
      sliderSelect.addEventListener("change", function () { buildSliders(sliderSelect.value); });
      q("slider-zero").addEventListener("click", function () {
        setSliders(sliderState.z.map(function () { return 0; }));
      });
      q("slider-random").addEventListener("click", function () {
        setSliders(sliderState.z.map(function () { return sliderRng.normal(); }));
      });
      q("slider-encode").addEventListener("click", function () {
        var m = models[sliderState.model];
        var mean = new Float64Array(m.K);
        m.encode(image, mean, null);
        setSliders(Array.from(mean));
      });
      buildSliders(sliderNames[0]);
    } else {
      q("slider-block").hidden = true;
    }

    // -- inpainting -----------------------------------------------------------------------------
    var digits = payload.digits;
    var digitPixels = digits ? base64Bytes(digits.data) : new Uint8Array(0);
    var nDigits = digits ? digits.labels.length : 0;
    var image = new Float64Array(D);
    var mask = new Uint8Array(D);
    var estimate = new Float64Array(D);
    var chain = null;
    var running = false;
    var frame = 0;
    var digitIndex = -1;
    var tool = "hide";
    var brush = 1.1;
    var lastSweepMs = 0;
    var maskRng = makeRng(0);

    var edit = q("edit");
    var fill = q("fill");
    var stateCanvas = q("state");
    var modelSelect = q("model");
    var runButton = q("run");
    var counter = q("counter");
    var info = q("info");
    var seedInput = q("seed");
    var stepsInput = q("steps");
    var burnInput = q("burn");
    var speedSelect = q("speed");
    var showSelect = q("show");

    order.forEach(function (name) {
      var option = element("option", "", models[name].label);
      option.value = name;
      modelSelect.appendChild(option);
    });

    function intInput(input, fallback) {
      var v = parseInt(input.value, 10);
      return isFinite(v) && v >= 0 ? v : fallback;
    }

    function resetChain() {
      lastSweepMs = 0;
      chain = new Chain(
        model(modelSelect.value), image, mask, intInput(seedInput, 0), intInput(burnInput, 0)
      );
      render();
    }

    function missingCount() {
      var n = 0;
      for (var i = 0; i < D; i++) n += mask[i];
      return n;
    }

    function render() {
      paintImage(edit, image, mask);
      if (!chain) return;
      chain.estimate(estimate, showSelect.value === "current");
      paintImage(fill, estimate, null);
      paintImage(stateCanvas, chain.state, null);
      var limit = intInput(stepsInput, 200);
      counter.textContent = "step " + chain.step + " / " + limit;
      var missing = missingCount();
      var text = missing + " of " + D + " pixels missing";
      if (missing) {
        var err = 0;
        for (var i = 0; i < D; i++) if (mask[i]) err += (estimate[i] - image[i]) * (estimate[i] - image[i]);
        text += "; squared error on them " + (err / missing).toFixed(4);
      }
      if (showSelect.value !== "current") {
        text += chain.count
          ? "; mean of p over " + chain.count + " sweeps"
          : "; burn-in: showing the current p";
      }
      if (lastSweepMs) text += "; " + lastSweepMs.toFixed(2) + " ms per sweep";
      info.textContent = text;
    }

    function setRunning(flag) {
      running = flag;
      runButton.textContent = running ? "Pause" : "Run";
      runButton.setAttribute("aria-pressed", running ? "true" : "false");
      if (running && !frame) frame = requestAnimationFrame(tick);
    }

    function tick() {
      frame = 0;
      if (!running || !chain) return;
      var limit = intInput(stepsInput, 200);
      var perFrame = Math.max(1, intInput(speedSelect, 1));
      var t0 = performance.now();
      var done = 0;
      while (done < perFrame && chain.step < limit) {
        chain.sweep();
        done += 1;
        if (performance.now() - t0 > 30) break; // keep the page responsive
      }
      if (done) lastSweepMs = (performance.now() - t0) / done;
      if (chain.step >= limit) setRunning(false);
      render();
      if (running) frame = requestAnimationFrame(tick);
    }

    function loadDigit(index) {
      digitIndex = index;
      for (var i = 0; i < D; i++) image[i] = index >= 0 ? digitPixels[index * D + i] / 255 : 0;
      var thumbs = q("thumbs").children;
      for (var t = 0; t < thumbs.length; t++) {
        thumbs[t].setAttribute("aria-pressed", t === index ? "true" : "false");
      }
      resetChain();
    }

    var thumbBox = q("thumbs");
    for (var d = 0; d < nDigits; d++) {
      var button = element("button", cls("thumb"));
      button.type = "button";
      button.title = "test digit " + digits.indices[d] + " (label " + digits.labels[d] + ")";
      var thumb = element("canvas");
      thumb.width = width;
      thumb.height = height;
      var values = new Float64Array(D);
      for (var p = 0; p < D; p++) values[p] = digitPixels[d * D + p] / 255;
      paintImage(thumb, values, null);
      button.appendChild(thumb);
      button.addEventListener("click", (function (index) {
        return function () { loadDigit(index); };
      })(d));
      thumbBox.appendChild(button);
    }

    q("blank").addEventListener("click", function () {
      mask.fill(0);
      loadDigit(-1);
      selectTool("pen");
    });

    function selectTool(name) {
      tool = name;
      var buttons = root.querySelectorAll("." + cls("tool"));
      for (var i = 0; i < buttons.length; i++) {
        var on = buttons[i].getAttribute("data-tool") === name;
        buttons[i].setAttribute("aria-pressed", on ? "true" : "false");
      }
    }
    Array.prototype.forEach.call(root.querySelectorAll("." + cls("tool")), function (b) {
      b.addEventListener("click", function () { selectTool(b.getAttribute("data-tool")); });
    });
    q("brush").addEventListener("change", function (event) { brush = Number(event.target.value); });

    function applyAt(x, y) {
      var reach = tool === "pen" || tool === "paper" ? brush + 0.5 : brush;
      var r0 = Math.max(0, Math.floor(y - reach - 0.5)), r1 = Math.min(height - 1, Math.ceil(y + reach));
      var c0 = Math.max(0, Math.floor(x - reach - 0.5)), c1 = Math.min(width - 1, Math.ceil(x + reach));
      for (var r = r0; r <= r1; r++) {
        for (var c = c0; c <= c1; c++) {
          var dist = Math.hypot(c + 0.5 - x, r + 0.5 - y);
          if (dist > reach) continue;
          var i = r * width + c;
          if (tool === "hide") mask[i] = 1;
          else if (tool === "reveal") mask[i] = 0;
          else {
            var ink = clamp01((brush + 0.5 - dist) / 0.8);
            image[i] = tool === "pen" ? Math.max(image[i], ink) : Math.min(image[i], 1 - ink);
            mask[i] = 0;
          }
        }
      }
    }

    function applyStroke(a, b) {
      var steps = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) / 0.25));
      for (var s = 0; s <= steps; s++) {
        applyAt(a[0] + ((b[0] - a[0]) * s) / steps, a[1] + ((b[1] - a[1]) * s) / steps);
      }
      resetChain();
    }

    var stroke = null;
    function canvasPoint(event) {
      var rect = edit.getBoundingClientRect();
      return [((event.clientX - rect.left) / rect.width) * width, ((event.clientY - rect.top) / rect.height) * height];
    }
    edit.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      event.preventDefault();
      if (edit.setPointerCapture) edit.setPointerCapture(event.pointerId);
      stroke = canvasPoint(event);
      applyStroke(stroke, stroke);
    });
    edit.addEventListener("pointermove", function (event) {
      if (!stroke) return;
      var point = canvasPoint(event);
      applyStroke(stroke, point);
      stroke = point;
    });
    var endStroke = function () { stroke = null; };
    edit.addEventListener("pointerup", endStroke);
    edit.addEventListener("pointercancel", endStroke);

    // Exactly round(fraction * D) missing pixels chosen uniformly (partial Fisher-Yates), as
    // rbmvae.masks.random_mask does.
    function randomMask(fraction) {
      var n = Math.round(fraction * D);
      var indices = new Int32Array(D);
      for (var i = 0; i < D; i++) indices[i] = i;
      mask.fill(0);
      for (var k = 0; k < n; k++) {
        var j = k + Math.floor(maskRng() * (D - k));
        var tmp = indices[k];
        indices[k] = indices[j];
        indices[j] = tmp;
        mask[indices[k]] = 1;
      }
      resetChain();
    }

    function halfMask(side) {
      for (var r = 0; r < height; r++) {
        for (var c = 0; c < width; c++) {
          var missing =
            side === "top" ? r < Math.floor(height / 2)
            : side === "bottom" ? r >= height - Math.floor(height / 2)
            : side === "left" ? c < Math.floor(width / 2)
            : c >= width - Math.floor(width / 2);
          mask[r * width + c] = missing ? 1 : 0;
        }
      }
      resetChain();
    }

    Array.prototype.forEach.call(root.querySelectorAll("." + cls("random-mask")), function (b) {
      b.addEventListener("click", function () { randomMask(Number(b.getAttribute("data-fraction"))); });
    });
    q("half").addEventListener("change", function (event) {
      if (event.target.value) halfMask(event.target.value);
      event.target.value = "";
    });
    q("clear").addEventListener("click", function () {
      mask.fill(0);
      resetChain();
    });
    runButton.addEventListener("click", function () {
      if (!running && chain && chain.step >= intInput(stepsInput, 200)) {
        stepsInput.value = String(chain.step + intInput(stepsInput, 200));
      }
      setRunning(!running);
    });
    q("step").addEventListener("click", function () {
      chain.sweep();
      render();
    });
    q("restart").addEventListener("click", resetChain);
    modelSelect.addEventListener("change", resetChain);
    seedInput.addEventListener("change", function () {
      maskRng = makeRng(intInput(seedInput, 0));
      resetChain();
    });
    burnInput.addEventListener("change", resetChain);
    showSelect.addEventListener("change", render);
    stepsInput.addEventListener("change", render);

    selectTool("hide");
    loadDigit(nDigits ? 0 : -1);

    // -- accessors for tests and the console -----------------------------------------------------
    instance.decode = function (name, z) {
      var m = model(name);
      if (m.kind !== "vae") throw new Error(name + " is not a VAE");
      var out = new Float64Array(m.D);
      m.decode(Float64Array.from(z), out);
      return Array.from(out);
    };
    instance.encode = function (name, x) {
      var m = model(name);
      var mean = new Float64Array(m.K), logVar = new Float64Array(m.K);
      m.encode(Float64Array.from(x), mean, logVar);
      return { mean: Array.from(mean), logVar: Array.from(logVar) };
    };
    instance.meanFieldStep = function (name, pixels, missing) {
      var m = model(name);
      var out = new Float64Array(m.D);
      m.meanFieldStep(Float64Array.from(pixels), Uint8Array.from(missing, Number), out);
      return Array.from(out);
    };
    instance.runChain = function (name, pixels, missing, steps, burnIn, seed) {
      var c = new Chain(model(name), pixels, Array.from(missing, Number), seed || 0, burnIn || 0);
      for (var s = 0; s < steps; s++) c.sweep();
      var out = new Float64Array(c.model.D);
      c.estimate(out, false);
      return { estimate: Array.from(out), state: Array.from(c.state), step: c.step };
    };
    instance.timeDecode = function (name, repeats) {
      var m = model(name);
      var z = new Float64Array(m.K), out = new Float64Array(m.D);
      var t0 = performance.now();
      for (var r = 0; r < repeats; r++) {
        z[0] = (r % 61) / 10 - 3;
        m.decode(z, out);
      }
      return (performance.now() - t0) / repeats;
    };
    instance.timeSweep = function (name, repeats) {
      var c = new Chain(model(name), image, mask, 0, 0);
      var t0 = performance.now();
      for (var r = 0; r < repeats; r++) c.sweep();
      return (performance.now() - t0) / repeats;
    };
    instance.state = function () {
      return {
        model: modelSelect.value,
        digit: digitIndex,
        step: chain ? chain.step : 0,
        running: running,
        image: Array.from(image),
        mask: Array.from(mask),
        chainState: chain ? Array.from(chain.state) : null,
        estimate: chain ? Array.from(estimate) : null,
        pad: { model: padState.model, z: padState.z.slice() },
        sliders: { model: sliderState.model, z: sliderState.z.slice() },
      };
    };
    return instance;
  }

  // ---------------------------------------------------------------------------------------------
  // the namespace and start-up

  var api = window[NAMESPACE];
  if (!api) {
    api = { version: 1, instances: [] };
    ["decode", "encode", "meanFieldStep", "runChain", "timeDecode", "timeSweep", "state"].forEach(
      function (method) {
        api[method] = function () {
          if (!api.instances.length) throw new Error("no explorer on this page");
          var first = api.instances[0];
          return first[method].apply(first, arguments);
        };
      }
    );
    window[NAMESPACE] = api;
  }

  var roots = [];
  var script = document.currentScript;
  var own = script && script.closest ? script.closest("[data-rbmvae-explorer]") : null;
  if (own) roots.push(own);
  else roots = Array.prototype.slice.call(document.querySelectorAll("[data-rbmvae-explorer]"));
  roots.forEach(function (root) {
    if (root.hasAttribute("data-rbmvae-ready")) return;
    root.setAttribute("data-rbmvae-ready", "");
    try {
      api.instances.push(createInstance(root));
    } catch (error) {
      var box = root.querySelector("[data-rbmvae-error]");
      if (box) {
        box.textContent = "The explorer could not start: " + error.message;
        box.hidden = false;
      }
      throw error;
    }
  });
})();
