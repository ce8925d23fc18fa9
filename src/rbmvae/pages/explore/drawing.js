/* rbmvae explorer, drawing: images on canvases, small DOM and number helpers. */

var LABEL_COLOURS = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
];
var MISSING_RGB = [64, 115, 217];

function clamp01(x) {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

function clamp(x, lo, hi) {
  return Math.max(lo, Math.min(hi, x));
}

// Grey levels of `values` (one per pixel, in [0, 1]); pixels with mask[i] = 1 in blue.
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

// x with `digits` decimals, a figure space for the sign of positive numbers
function fmt(x, digits) {
  return (x >= 0 ? "\u2007" : "\u2212") + Math.abs(x).toFixed(digits);
}

// Options of `select`, one per model name, showing the models' labels.
function addModelOptions(select, names, models) {
  names.forEach(function (name) {
    var option = element("option", "", models[name].label);
    option.value = name;
    select.appendChild(option);
  });
}
