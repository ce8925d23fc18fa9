/* rbmvae explorer, start-up: one instance per copy of the fragment on the page.
 *
 * The only global is one namespaced object, window.rbmvaeExplorer; each copy of the fragment
 * becomes one entry of its `instances`. Every element is found inside the fragment's own root
 * by a class carrying the fragment's prefix.
 */

var NAMESPACE = "rbmvaeExplorer";

// What every part shares: the root, its element lookup, the image size and the models.
function instanceContext(root) {
  var prefix = root.getAttribute("data-rbmvae-explorer");
  var cls = function (name) { return prefix + "-" + name; };
  var q = function (name) { return root.querySelector("." + cls(name)); };
  var payload = JSON.parse(q("data").textContent);
  var ctx = {
    root: root, prefix: prefix, cls: cls, q: q, payload: payload,
    height: payload.imageShape[0], width: payload.imageShape[1],
    models: {}, order: [],
  };
  ctx.D = ctx.height * ctx.width;
  payload.models.forEach(function (spec) {
    var model = buildModel(spec);
    if (model.D !== ctx.D) throw new Error(spec.name + ": " + model.D + " pixels, not " + ctx.D);
    model.label = spec.label;
    ctx.models[spec.name] = model;
    ctx.order.push(spec.name);
  });
  ctx.model = function (name) {
    var m = ctx.models[name];
    if (!m) throw new Error("no model named " + name + " (have " + ctx.order.join(", ") + ")");
    return m;
  };
  return ctx;
}

function showNotes(ctx) {
  var texts = ctx.payload.notes;
  if (!texts || !texts.length) return;
  var notes = ctx.q("notes");
  texts.forEach(function (text) { notes.appendChild(element("p", "", text)); });
  notes.hidden = false;
}

// One explorer: the latent pad, the sliders and the inpainting canvas.
function createInstance(root) {
  var ctx = instanceContext(root);
  var instance = { root: root, models: ctx.models, modelNames: ctx.order.slice() };
  showNotes(ctx);
  var parts = { pad: new LatentPad(ctx) };
  parts.canvas = new Inpainting(ctx);
  parts.sliders = new Sliders(ctx, parts.canvas.image);
  addHooks(instance, ctx, parts);
  return instance;
}

function namespace() {
  var api = window[NAMESPACE];
  if (api) return api;
  api = { version: 1, instances: [] };
  HOOKS.forEach(function (method) {
    api[method] = function () {
      if (!api.instances.length) throw new Error("no explorer on this page");
      var first = api.instances[0];
      return first[method].apply(first, arguments);
    };
  });
  window[NAMESPACE] = api;
  return api;
}

// The fragment holding this script (or, where that cannot be told, every fragment not started).
function start() {
  var api = namespace();
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
}

start();
