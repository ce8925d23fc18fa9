/* rbmvae explorer, maths: the weights' decoding and the models' conditionals.
 *
 * RBM p(h | v) and p(v | h) (Eqs. 1.5, 1.6); VAE encoder q(z | x), reparameterization (Eq. 2.3)
 * and Bernoulli decoder p(x | z). Weights arrive as float32 (or float16 when the page would be
 * too large); the arithmetic is done in double precision on them. Every method writes into
 * buffers allocated once.
 */

// ---------------------------------------------------------------------------------------------
// weights: little-endian base64 tensors

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
// the RBM

function RBM(spec) {
  var t = spec.tensors;
  this.name = spec.name;
  this.D = t.weight.shape[0];
  this.H = t.weight.shape[1];
  this.W = readTensor(t.weight); // D x H, row-major
  this.b = readTensor(t.visible_bias);
  this.c = readTensor(t.hidden_bias);
  this.hiddenBuffer = new Float64Array(this.H);
  this.hiddenSample = new Float64Array(this.H);
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

// The chains' first fill of the missing pixels: sigm(b).
RBM.prototype.startFill = function (out) {
  for (var i = 0; i < this.D; i++) out[i] = sigmoid(this.b[i]);
};

// The first half of a clamped Gibbs sweep (Eq. 5.2): h ~ p(h | v), then out = p(v | h).
RBM.prototype.sampleProbs = function (v, rng, out) {
  this.hiddenProbs(v, this.hiddenBuffer);
  for (var k = 0; k < this.H; k++) this.hiddenSample[k] = rng() < this.hiddenBuffer[k] ? 1 : 0;
  this.visibleProbs(this.hiddenSample, out);
};

// v' = where(mask, sigm(b + sigm(c + vW) W'), v)
RBM.prototype.meanFieldStep = function (v, mask, out) {
  this.hiddenProbs(v, this.hiddenBuffer);
  this.visibleProbs(this.hiddenBuffer, out);
  for (var i = 0; i < this.D; i++) if (!mask[i]) out[i] = v[i];
};

// ---------------------------------------------------------------------------------------------
// the VAE

function Linear(layer) {
  this.nOut = layer.weight.shape[0];
  this.nIn = layer.weight.shape[1];
  this.W = readTensor(layer.weight); // out x in, row-major
  this.b = readTensor(layer.bias);
}

// out = W x + b, or max(0, W x + b) when `relu`
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
  this.name = spec.name;
  this.encoderHidden = layer("encoder_hidden");
  this.encoderMean = layer("encoder_mean");
  this.encoderLogVar = layer("encoder_log_var");
  this.decoderHidden = layer("decoder_hidden");
  this.decoderOutput = layer("decoder_output");
  this.D = this.encoderHidden.nIn;
  this.K = this.encoderMean.nOut; // the code size; only VAEs have one
  this.encodeBuffer = new Float64Array(this.encoderHidden.nOut);
  this.decodeBuffer = new Float64Array(this.decoderHidden.nOut);
  this.meanBuffer = new Float64Array(this.K);
  this.logVarBuffer = new Float64Array(this.K);
  this.zBuffer = new Float64Array(this.K);
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

// The chains' first fill of the missing pixels: p(x | z = 0).
VAE.prototype.startFill = function (out) {
  this.meanBuffer.fill(0);
  this.decode(this.meanBuffer, out);
};

// The first half of a pseudo-Gibbs sweep (Eq. 5.3): z ~ q(z | v) by Eq. 2.3, out = p(x | z).
VAE.prototype.sampleProbs = function (v, rng, out) {
  this.encode(v, this.meanBuffer, this.logVarBuffer);
  for (var k = 0; k < this.K; k++) {
    this.zBuffer[k] = this.meanBuffer[k] + Math.exp(0.5 * this.logVarBuffer[k]) * rng.normal();
  }
  this.decode(this.zBuffer, out);
};

// v' = where(mask, decode(mean(encode(v))), v)
VAE.prototype.meanFieldStep = function (v, mask, out) {
  this.encode(v, this.meanBuffer, null);
  this.decode(this.meanBuffer, out);
  for (var i = 0; i < this.D; i++) if (!mask[i]) out[i] = v[i];
};

// The page's models by the `kind` the payload gives them (rbmvae.models.MODEL_KINDS).
var MODEL_TYPES = { rbm: RBM, vae: VAE };

function buildModel(spec) {
  var Type = Object.prototype.hasOwnProperty.call(MODEL_TYPES, spec.kind)
    ? MODEL_TYPES[spec.kind]
    : null;
  if (!Type) throw new Error("unknown model kind " + spec.kind);
  var model = new Type(spec);
  model.kind = spec.kind;
  return model;
}
