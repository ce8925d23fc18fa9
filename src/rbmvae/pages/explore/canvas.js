/* rbmvae explorer, the inpainting canvas: a test digit (or one drawn by hand) with missing
 * pixels, filled step by step by the chosen model's chain (sampling.js); the editing tools are
 * in editing.js.
 */

function Inpainting(ctx) {
  var D = ctx.D, q = ctx.q;
  this.ctx = ctx;
  this.image = new Float64Array(D);
  this.mask = new Uint8Array(D); // 1: missing
  this.estimate = new Float64Array(D);
  this.chain = null;
  this.running = false;
  this.frame = 0;
  this.digitIndex = -1;
  this.lastSweepMs = 0;
  this.tool = "hide";
  this.brush = 1.1;
  this.maskRng = makeRng(0);
  var digits = ctx.payload.digits;
  this.digits = digits;
  this.digitPixels = digits ? base64Bytes(digits.data) : new Uint8Array(0);
  this.nDigits = digits ? digits.labels.length : 0;
  this.el = {
    edit: q("edit"), fill: q("fill"), state: q("state"), model: q("model"), run: q("run"),
    counter: q("counter"), info: q("info"), seed: q("seed"), steps: q("steps"),
    burn: q("burn"), speed: q("speed"), show: q("show"),
  };
  addModelOptions(this.el.model, ctx.order, ctx.models);
  this.addThumbnails();
  this.bindControls();
  bindEditing(this);
  this.selectTool("hide");
  this.loadDigit(this.nDigits ? 0 : -1);
}

function intInput(input, fallback) {
  var v = parseInt(input.value, 10);
  return isFinite(v) && v >= 0 ? v : fallback;
}

Inpainting.prototype.stepLimit = function () {
  return intInput(this.el.steps, 200);
};

// A new chain from the current image and mask, the chosen model, seed and burn-in.
Inpainting.prototype.resetChain = function () {
  var el = this.el;
  this.lastSweepMs = 0;
  this.chain = new Chain(
    this.ctx.model(el.model.value), this.image, this.mask, intInput(el.seed, 0),
    intInput(el.burn, 0)
  );
  this.render();
};

Inpainting.prototype.render = function () {
  var el = this.el, chain = this.chain;
  paintImage(el.edit, this.image, this.mask);
  if (!chain) return;
  chain.estimate(this.estimate, el.show.value === "current");
  paintImage(el.fill, this.estimate, null);
  paintImage(el.state, chain.state, null);
  el.counter.textContent = "step " + chain.step + " / " + this.stepLimit();
  el.info.textContent = this.infoText();
};

// Missing pixels, their squared error, what is shown and the time per sweep.
Inpainting.prototype.infoText = function () {
  var D = this.ctx.D, mask = this.mask, chain = this.chain, i;
  var missing = 0;
  for (i = 0; i < D; i++) missing += mask[i];
  var text = missing + " of " + D + " pixels missing";
  if (missing) {
    var err = 0;
    for (i = 0; i < D; i++) {
      if (mask[i]) err += (this.estimate[i] - this.image[i]) * (this.estimate[i] - this.image[i]);
    }
    text += "; squared error on them " + (err / missing).toFixed(4);
  }
  if (this.el.show.value !== "current") {
    text += chain.count
      ? "; mean of p over " + chain.count + " sweeps"
      : "; burn-in: showing the current p";
  }
  if (this.lastSweepMs) text += "; " + this.lastSweepMs.toFixed(2) + " ms per sweep";
  return text;
};

Inpainting.prototype.setRunning = function (flag) {
  this.running = flag;
  this.el.run.textContent = flag ? "Pause" : "Run";
  this.el.run.setAttribute("aria-pressed", flag ? "true" : "false");
  if (flag && !this.frame) this.requestFrame();
};

Inpainting.prototype.requestFrame = function () {
  var self = this;
  this.frame = requestAnimationFrame(function () { self.tick(); });
};

// One animation frame: up to "sweeps per frame" sweeps, at most about 30 ms of them.
Inpainting.prototype.tick = function () {
  var chain = this.chain;
  this.frame = 0;
  if (!this.running || !chain) return;
  var limit = this.stepLimit();
  var perFrame = Math.max(1, intInput(this.el.speed, 1));
  var t0 = performance.now();
  var done = 0;
  while (done < perFrame && chain.step < limit) {
    chain.sweep();
    done += 1;
    if (performance.now() - t0 > 30) break; // keep the page responsive
  }
  if (done) this.lastSweepMs = (performance.now() - t0) / done;
  if (chain.step >= limit) this.setRunning(false);
  this.render();
  if (this.running) this.requestFrame();
};

// Test digit number `index` as the image (-1: a blank canvas); the mask stays.
Inpainting.prototype.loadDigit = function (index) {
  var D = this.ctx.D;
  this.digitIndex = index;
  for (var i = 0; i < D; i++) {
    this.image[i] = index >= 0 ? this.digitPixels[index * D + i] / 255 : 0;
  }
  var thumbs = this.ctx.q("thumbs").children;
  for (var t = 0; t < thumbs.length; t++) {
    thumbs[t].setAttribute("aria-pressed", t === index ? "true" : "false");
  }
  this.resetChain();
};

Inpainting.prototype.addThumbnails = function () {
  var ctx = this.ctx, D = ctx.D, digits = this.digits, box = ctx.q("thumbs");
  var self = this;
  var onClick = function (index) {
    return function () { self.loadDigit(index); };
  };
  for (var d = 0; d < this.nDigits; d++) {
    var button = element("button", ctx.cls("thumb"));
    button.type = "button";
    button.title = "test digit " + digits.indices[d] + " (label " + digits.labels[d] + ")";
    var thumb = element("canvas");
    thumb.width = ctx.width;
    thumb.height = ctx.height;
    var values = new Float64Array(D);
    for (var p = 0; p < D; p++) values[p] = this.digitPixels[d * D + p] / 255;
    paintImage(thumb, values, null);
    button.appendChild(thumb);
    button.addEventListener("click", onClick(d));
    box.appendChild(button);
  }
};

// Run / pause, one step, restart, and the chain's settings.
Inpainting.prototype.bindControls = function () {
  var self = this, el = this.el, q = this.ctx.q;
  var reset = function () { self.resetChain(); };
  var render = function () { self.render(); };
  el.run.addEventListener("click", function () {
    if (!self.running && self.chain && self.chain.step >= self.stepLimit()) {
      el.steps.value = String(self.chain.step + self.stepLimit());
    }
    self.setRunning(!self.running);
  });
  q("step").addEventListener("click", function () {
    self.chain.sweep();
    self.render();
  });
  q("restart").addEventListener("click", reset);
  el.model.addEventListener("change", reset);
  el.seed.addEventListener("change", function () {
    self.maskRng = makeRng(intInput(el.seed, 0));
    self.resetChain();
  });
  el.burn.addEventListener("change", reset);
  el.show.addEventListener("change", render);
  el.steps.addEventListener("change", render);
};

Inpainting.prototype.state = function () {
  var chain = this.chain;
  return {
    model: this.el.model.value,
    digit: this.digitIndex,
    step: chain ? chain.step : 0,
    running: this.running,
    image: Array.from(this.image),
    mask: Array.from(this.mask),
    chainState: chain ? Array.from(chain.state) : null,
    estimate: chain ? Array.from(this.estimate) : null,
  };
};
