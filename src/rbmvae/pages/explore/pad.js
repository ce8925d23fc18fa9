/* rbmvae explorer, the latent pad: the 2-D code space of a VAE over [-R, R]^2, the decoded
 * manifold drawn faintly beneath the test set's posterior means (coloured by label). The
 * pointer's position (or the arrow keys) sets z, decoded live into p(x = 1 | z).
 */

function LatentPad(ctx) {
  var latent = ctx.payload.latent;
  this.ctx = ctx;
  this.model = null;
  this.z = [0, 0];
  if (!latent || !ctx.models[latent.model]) {
    ctx.q("pad-block").hidden = true;
    return;
  }
  this.latent = latent;
  this.model = latent.model;
  this.R = latent.range;
  this.pad = ctx.q("pad");
  this.out = ctx.q("pad-out");
  this.readout = ctx.q("pad-readout");
  this.output = new Float64Array(ctx.D);
  this.code = new Float64Array(2);
  this.background = document.createElement("canvas");
  this.background.width = this.pad.width;
  this.background.height = this.pad.height;
  this.bindEvents();
  this.drawLegend();
  ctx.q("pad-title").textContent = ctx.models[latent.model].label;
  this.drawBackground(null);
  this.decode(0, 0);
  if (latent.manifold) {
    var self = this;
    var manifold = new Image();
    manifold.onload = function () { self.drawBackground(manifold); };
    manifold.src = latent.manifold;
  }
}

LatentPad.prototype.toX = function (z1) {
  return ((z1 + this.R) / (2 * this.R)) * this.pad.width;
};

LatentPad.prototype.toY = function (z2) {
  return ((this.R - z2) / (2 * this.R)) * this.pad.height;
};

// The dark ground, the manifold image (once loaded), the unit grid and the test points.
LatentPad.prototype.drawBackground = function (manifold) {
  var background = this.background, R = this.R, latent = this.latent;
  var ctx = background.getContext("2d");
  ctx.fillStyle = "#0d1117";
  ctx.fillRect(0, 0, background.width, background.height);
  if (manifold) {
    ctx.globalAlpha = 0.45;
    ctx.imageSmoothingEnabled = true;
    var lo = latent.manifoldExtent[0], hi = latent.manifoldExtent[1];
    var x0 = this.toX(lo), y0 = this.toY(hi);
    ctx.drawImage(manifold, x0, y0, this.toX(hi) - x0, this.toY(lo) - y0);
    ctx.globalAlpha = 1;
  }
  ctx.strokeStyle = "rgba(255,255,255,0.18)";
  ctx.lineWidth = 1;
  for (var t = -Math.floor(R); t <= Math.floor(R); t++) {
    ctx.beginPath();
    ctx.moveTo(this.toX(t), 0);
    ctx.lineTo(this.toX(t), background.height);
    ctx.moveTo(0, this.toY(t));
    ctx.lineTo(background.width, this.toY(t));
    ctx.stroke();
  }
  var points = latent.points || { z: [], labels: [] };
  ctx.globalAlpha = 0.8;
  for (var i = 0; i < points.labels.length; i++) {
    ctx.fillStyle = LABEL_COLOURS[points.labels[i] % 10];
    ctx.fillRect(this.toX(points.z[2 * i]) - 1.5, this.toY(points.z[2 * i + 1]) - 1.5, 3, 3);
  }
  ctx.globalAlpha = 1;
  this.draw();
};

// The background and a cross-hair at z.
LatentPad.prototype.draw = function () {
  var ctx = this.pad.getContext("2d");
  ctx.drawImage(this.background, 0, 0);
  var x = this.toX(this.z[0]), y = this.toY(this.z[1]);
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

LatentPad.prototype.decode = function (z1, z2) {
  this.z = [z1, z2];
  this.code[0] = z1;
  this.code[1] = z2;
  var t0 = performance.now();
  this.ctx.models[this.model].decode(this.code, this.output);
  var elapsed = performance.now() - t0;
  paintImage(this.out, this.output, null);
  this.draw();
  this.readout.textContent =
    "z = (" + fmt(z1, 2) + ", " + fmt(z2, 2) + ")  decoded in " + elapsed.toFixed(2) + " ms";
};

LatentPad.prototype.bindEvents = function () {
  var self = this, pad = this.pad, R = this.R;
  var fromPointer = function (event) {
    var rect = pad.getBoundingClientRect();
    var fx = (event.clientX - rect.left) / rect.width;
    var fy = (event.clientY - rect.top) / rect.height;
    self.decode(clamp(-R + 2 * R * fx, -R, R), clamp(R - 2 * R * fy, -R, R));
  };
  pad.addEventListener("pointermove", fromPointer);
  pad.addEventListener("pointerdown", fromPointer);
  pad.addEventListener("keydown", function (event) {
    var step = event.shiftKey ? 0.5 : 0.1;
    var move = {
      ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step],
    }[event.key];
    if (!move) return;
    event.preventDefault();
    self.decode(clamp(self.z[0] + move[0], -R, R), clamp(self.z[1] + move[1], -R, R));
  });
};

LatentPad.prototype.drawLegend = function () {
  var legend = this.ctx.q("legend");
  for (var label = 0; label < 10; label++) {
    var item = element("span", this.ctx.cls("legend-item"), String(label));
    var swatch = element("span", this.ctx.cls("swatch"));
    swatch.style.background = LABEL_COLOURS[label];
    item.insertBefore(swatch, item.firstChild);
    legend.appendChild(item);
  }
};

LatentPad.prototype.state = function () {
  return { model: this.model, z: this.z.slice() };
};
