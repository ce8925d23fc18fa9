/* rbmvae explorer, sampling: a seeded random number generator and the inpainting chain.
 *
 * The chain is clamped Gibbs sampling in an RBM (Eq. 5.2) or pseudo-Gibbs sampling in a VAE
 * (Eq. 5.3): the model's sampleProbs() draws its latent units and gives p(x | latent); the
 * missing pixels are then drawn from Bernoulli(p). Observed pixels never change.
 */

// mulberry32, seeded; normals by Box-Muller (two per pair of uniforms).
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

// A chain over `image` (D values in [0, 1]) whose pixels with mask[i] = 1 are missing: they
// start at the model's default fill; the observed ones are copied from `image`.
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
}

// One sweep: p from the model's latent draw, the sum of p after burn-in, new missing pixels.
Chain.prototype.sweep = function () {
  var rng = this.rng, D = this.model.D, i;
  this.model.sampleProbs(this.state, rng, this.probs);
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
// current p while still burning in, or when `current`).
Chain.prototype.estimate = function (out, current) {
  var useMean = !current && this.count > 0;
  for (var i = 0; i < this.model.D; i++) {
    if (!this.mask[i]) out[i] = this.image[i];
    else out[i] = useMean ? this.total[i] / this.count : this.probs[i];
  }
};
