/* rbmvae explorer, hooks for tests and the console: the models' arithmetic on given inputs,
 * chains run to the end, timings, and the state of the page's controls. */

function addHooks(instance, ctx, parts) {
  var model = ctx.model;
  instance.decode = function (name, z) {
    var m = model(name);
    if (!m.decode) throw new Error(name + " is not a VAE");
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
    var c = new Chain(model(name), parts.canvas.image, parts.canvas.mask, 0, 0);
    var t0 = performance.now();
    for (var r = 0; r < repeats; r++) c.sweep();
    return (performance.now() - t0) / repeats;
  };
  instance.state = function () {
    var state = parts.canvas.state();
    state.pad = parts.pad.state();
    state.sliders = parts.sliders.state();
    return state;
  };
}

// The hooks the namespace forwards to the page's first explorer.
var HOOKS = ["decode", "encode", "meanFieldStep", "runChain", "timeDecode", "timeSweep", "state"];
