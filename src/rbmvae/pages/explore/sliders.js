/* rbmvae explorer, the sliders: one per code unit of a VAE whose code is not 2-D, decoded live
 * into p(x = 1 | z). `image` is the inpainting canvas's input, which "code of the digit below"
 * encodes.
 */

var SLIDER_RANGE = 3;

function Sliders(ctx, image) {
  var models = ctx.models;
  this.ctx = ctx;
  this.image = image;
  this.model = null;
  this.z = [];
  this.names = ctx.order.filter(function (n) {
    return models[n].K !== undefined && models[n].K !== 2;
  });
  if (!this.names.length) {
    ctx.q("slider-block").hidden = true;
    return;
  }
  this.output = new Float64Array(ctx.D);
  this.code = null;
  this.inputs = [];
  this.rng = makeRng(12345);
  this.select = ctx.q("slider-model");
  this.box = ctx.q("sliders");
  this.out = ctx.q("slider-out");
  this.readout = ctx.q("slider-readout");
  addModelOptions(this.select, this.names, models);
  this.bindButtons();
  this.build(this.names[0]);
}

Sliders.prototype.decode = function () {
  var m = this.ctx.models[this.model];
  for (var k = 0; k < m.K; k++) this.code[k] = this.z[k];
  var t0 = performance.now();
  m.decode(this.code, this.output);
  var elapsed = performance.now() - t0;
  paintImage(this.out, this.output, null);
  this.readout.textContent = "decoded in " + elapsed.toFixed(2) + " ms";
};

Sliders.prototype.set = function (values) {
  for (var k = 0; k < values.length; k++) {
    var v = clamp(values[k], -SLIDER_RANGE, SLIDER_RANGE);
    this.z[k] = v;
    this.inputs[k].input.value = String(v);
    this.inputs[k].value.textContent = fmt(v, 2);
  }
  this.decode();
};

// One range input per code unit of model `name`, all at 0.
Sliders.prototype.build = function (name) {
  var m = this.ctx.models[name], cls = this.ctx.cls;
  this.model = name;
  this.z = new Array(m.K).fill(0);
  this.code = new Float64Array(m.K);
  this.inputs = [];
  this.box.textContent = "";
  for (var k = 0; k < m.K; k++) {
    var row = element("label", cls("slider-row"));
    row.appendChild(element("span", cls("slider-name"), "z" + (k + 1)));
    var input = element("input", cls("slider"));
    input.type = "range";
    input.min = String(-SLIDER_RANGE);
    input.max = String(SLIDER_RANGE);
    input.step = "0.01";
    input.value = "0";
    input.setAttribute("data-unit", String(k));
    var value = element("span", cls("slider-value"), fmt(0, 2));
    row.appendChild(input);
    row.appendChild(value);
    this.box.appendChild(row);
    this.inputs.push({ input: input, value: value });
    input.addEventListener("input", this.onInput(k, value));
  }
  this.decode();
};

Sliders.prototype.onInput = function (unit, out) {
  var self = this;
  return function (event) {
    var v = Number(event.target.value);
    self.z[unit] = v;
    out.textContent = fmt(v, 2);
    self.decode();
  };
};

Sliders.prototype.bindButtons = function () {
  var self = this, q = this.ctx.q;
  this.select.addEventListener("change", function () { self.build(self.select.value); });
  q("slider-zero").addEventListener("click", function () {
    self.set(self.z.map(function () { return 0; }));
  });
  q("slider-random").addEventListener("click", function () {
    self.set(self.z.map(function () { return self.rng.normal(); }));
  });
  q("slider-encode").addEventListener("click", function () {
    var m = self.ctx.models[self.model];
    var mean = new Float64Array(m.K);
    m.encode(self.image, mean, null);
    self.set(Array.from(mean));
  });
};

Sliders.prototype.state = function () {
  return { model: this.model, z: this.z.slice() };
};
