/* rbmvae explorer, editing the inpainting canvas's input: brush strokes that hide or show
 * pixels or draw ink or background, random masks, half masks and the blank canvas.
 */

function bindEditing(canvas) {
  var ctx = canvas.ctx, root = ctx.root, q = ctx.q;
  q("blank").addEventListener("click", function () {
    canvas.mask.fill(0);
    canvas.loadDigit(-1);
    canvas.selectTool("pen");
  });
  Array.prototype.forEach.call(root.querySelectorAll("." + ctx.cls("tool")), function (b) {
    b.addEventListener("click", function () { canvas.selectTool(b.getAttribute("data-tool")); });
  });
  q("brush").addEventListener("change", function (event) {
    canvas.brush = Number(event.target.value);
  });
  bindStrokes(canvas);
  Array.prototype.forEach.call(root.querySelectorAll("." + ctx.cls("random-mask")), function (b) {
    b.addEventListener("click", function () {
      canvas.randomMask(Number(b.getAttribute("data-fraction")));
    });
  });
  q("half").addEventListener("change", function (event) {
    if (event.target.value) canvas.halfMask(event.target.value);
    event.target.value = "";
  });
  q("clear").addEventListener("click", function () {
    canvas.mask.fill(0);
    canvas.resetChain();
  });
}

// Strokes of the mouse (or pen, or finger) on the input canvas, in pixel coordinates.
function bindStrokes(canvas) {
  var edit = canvas.el.edit, width = canvas.ctx.width, height = canvas.ctx.height;
  var stroke = null;
  var canvasPoint = function (event) {
    var rect = edit.getBoundingClientRect();
    return [
      ((event.clientX - rect.left) / rect.width) * width,
      ((event.clientY - rect.top) / rect.height) * height,
    ];
  };
  edit.addEventListener("pointerdown", function (event) {
    if (event.button !== 0) return;
    event.preventDefault();
    if (edit.setPointerCapture) edit.setPointerCapture(event.pointerId);
    stroke = canvasPoint(event);
    canvas.applyStroke(stroke, stroke);
  });
  edit.addEventListener("pointermove", function (event) {
    if (!stroke) return;
    var point = canvasPoint(event);
    canvas.applyStroke(stroke, point);
    stroke = point;
  });
  var endStroke = function () { stroke = null; };
  edit.addEventListener("pointerup", endStroke);
  edit.addEventListener("pointercancel", endStroke);
}

Inpainting.prototype.selectTool = function (name) {
  this.tool = name;
  var buttons = this.ctx.root.querySelectorAll("." + this.ctx.cls("tool"));
  for (var i = 0; i < buttons.length; i++) {
    var on = buttons[i].getAttribute("data-tool") === name;
    buttons[i].setAttribute("aria-pressed", on ? "true" : "false");
  }
};

// The brush at (x, y): hide, show, or draw ink (pen) or background (paper) as observed pixels.
Inpainting.prototype.applyAt = function (x, y) {
  var tool = this.tool, brush = this.brush, width = this.ctx.width, height = this.ctx.height;
  var image = this.image, mask = this.mask;
  var reach = tool === "pen" || tool === "paper" ? brush + 0.5 : brush;
  var r0 = Math.max(0, Math.floor(y - reach - 0.5));
  var r1 = Math.min(height - 1, Math.ceil(y + reach));
  var c0 = Math.max(0, Math.floor(x - reach - 0.5));
  var c1 = Math.min(width - 1, Math.ceil(x + reach));
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
};

// The brush along the segment from a to b, every quarter pixel; then a new chain.
Inpainting.prototype.applyStroke = function (a, b) {
  var steps = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) / 0.25));
  for (var s = 0; s <= steps; s++) {
    this.applyAt(a[0] + ((b[0] - a[0]) * s) / steps, a[1] + ((b[1] - a[1]) * s) / steps);
  }
  this.resetChain();
};

// Exactly round(fraction * D) missing pixels chosen uniformly (partial Fisher-Yates), as
// rbmvae.data.masks.random_mask does.
Inpainting.prototype.randomMask = function (fraction) {
  var D = this.ctx.D, mask = this.mask, rng = this.maskRng;
  var n = Math.round(fraction * D);
  var indices = new Int32Array(D);
  for (var i = 0; i < D; i++) indices[i] = i;
  mask.fill(0);
  for (var k = 0; k < n; k++) {
    var j = k + Math.floor(rng() * (D - k));
    var tmp = indices[k];
    indices[k] = indices[j];
    indices[j] = tmp;
    mask[indices[k]] = 1;
  }
  this.resetChain();
};

// The top, bottom, left or right half missing (the smaller half for an odd size).
Inpainting.prototype.halfMask = function (side) {
  var width = this.ctx.width, height = this.ctx.height;
  var rows = Math.floor(height / 2), cols = Math.floor(width / 2);
  for (var r = 0; r < height; r++) {
    for (var c = 0; c < width; c++) {
      var missing =
        side === "top" ? r < rows
        : side === "bottom" ? r >= height - rows
        : side === "left" ? c < cols
        : c >= width - cols;
      this.mask[r * width + c] = missing ? 1 : 0;
    }
  }
  this.resetChain();
};
