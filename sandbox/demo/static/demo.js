/* The demo page as the host: frames Inflow's modules and answers all.js inside them.
 *
 * all.js (Atlassian's Connect JavaScript API, loaded by each frame) speaks simple-xdm: the frame's
 * window.name carries {extension_id, origin, api, options}; the frame posts `init`, then `req`
 * messages {eid, mid, mod, fn, args}; the host answers `resp` {mid, forPlugin: true, args}.
 * This page offers the modules Inflow uses: context (getToken, getContext) and env (resize, ...).
 * Tokens come from /demo/token, which asks the sandbox site to sign them as the host does; a
 * frame opened later (the byline's dialog) gets its URL signed then, from /demo/frame.
 */
(function () {
  "use strict";
  var ADDON_KEY = "io.inflow.app";
  var API = {
    context: { getToken: spec(["callback"]), getContext: spec(["callback"]) },
    env: { resize: spec(["width", "height", "callback"]), sizeToParent: spec(["hideFooter", "callback"]),
           hideFooter: spec(["hideFooter"]), getLocation: spec(["callback"]) }
  };
  var frames = {};  // extension id -> {iframe, product, module, window}
  var tokens = {};  // product -> {token, until}
  var viewer = "";  // the person the page acts as (data-viewer), read when the page is ready

  function spec(args) { return { args: args, returnsPromise: false }; }

  function extensionId(module) {
    return ADDON_KEY + "__" + module + "__" + Math.random().toString(16).slice(2, 10);
  }

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) { throw new Error(url + " answered " + r.status); }
      return r.json();
    });
  }

  // A frame opened later is signed as it opens, as the host signs a dialog's URL: one signed
  // with the page would have expired (three minutes) by the time someone opens it.
  function load(slot) {
    if (slot.querySelector("iframe") || slot.getAttribute("aria-busy") === "true") { return; }
    var sign = slot.getAttribute("data-sign");
    if (!sign) { insertFrame(slot, slot.getAttribute("data-src")); return; }
    slot.setAttribute("aria-busy", "true");
    getJSON(sign).then(function (data) { insertFrame(slot, data.src); }, function () {
      slot.textContent = "The sandbox site could not sign this frame. Close it and open it again.";
    }).then(function () { slot.removeAttribute("aria-busy"); });
  }

  // The frame's name must be set before it is in the document: a browsing context takes its
  // name when it is created, and a later change to the attribute does not reach window.name.
  function insertFrame(slot, src) {
    var eid = extensionId(slot.getAttribute("data-module"));
    var iframe = document.createElement("iframe");
    iframe.id = eid;
    iframe.title = slot.getAttribute("data-title");
    iframe.style.height = (slot.getAttribute("data-height") || "240") + "px";
    iframe.name = JSON.stringify({
      extension_id: eid, origin: location.origin, api: API,
      options: { autoresize: true, hostOrigin: location.origin, globalOptions: {},
                 targets: {}, isDialog: false }
    });
    iframe.src = src;
    frames[eid] = { iframe: iframe, product: slot.getAttribute("data-product"), window: null };
    slot.replaceChildren(iframe);  // and no word left of a failed attempt
  }

  function token(product) {
    var held = tokens[product];
    if (held && held.until > Date.now()) { return Promise.resolve(held.token); }
    var url = "/demo/token?product=" + encodeURIComponent(product) + (viewer ? "&as=" + encodeURIComponent(viewer) : "");
    return getJSON(url).then(function (data) {
      tokens[product] = { token: data.token, until: Date.now() + 10 * 60 * 1000 };  // tokens live 15 min
      return data.token;
    });
  }

  var handlers = {
    context: {
      getToken: function (frame) { return token(frame.product); },
      getContext: function (frame) {
        var body = document.body.dataset;
        return Promise.resolve(frame.product === "jira"
          ? { jira: { issue: { key: body.issue || "" }, project: { key: body.project || "" } } }
          : { confluence: { content: { id: body.page || "" }, space: { key: body.space || "" } } });
      }
    },
    env: {
      resize: function (frame, args) {
        var height = args[1];
        if (height) { frame.iframe.style.height = (typeof height === "number" ? height + "px" : height); }
      },
      sizeToParent: function () {},
      hideFooter: function () {},
      getLocation: function () { return Promise.resolve(location.href); }
    }
  };

  function answer(frame, mid, args) {
    frame.window.postMessage({ mid: mid, type: "resp", forPlugin: true, args: args }, location.origin);
  }

  function onMessage(event) {
    var data = event.data || {};
    var frame = frames[data.eid];
    // Only the frames this page made, from the app's origin (the frames are Inflow's own pages).
    if (!frame || event.origin !== location.origin || event.source !== frame.iframe.contentWindow) { return; }
    frame.window = event.source;
    if (data.type === "init") {
      event.source.postMessage({ type: "init_received" }, location.origin);
    } else if (data.type === "req") {
      var fn = (handlers[data.mod] || {})[data.fn];
      if (!fn) { return; }
      var result = fn(frame, data.args || []);
      if (data.mid && result && result.then) {
        result.then(function (value) { answer(frame, data.mid, [value]); },
                    function () { answer(frame, data.mid, [null]); });  // all.js callers treat null as "no token"
      }
    }
  }

  function toggleDialog(button) {
    var dialog = document.getElementById(button.getAttribute("data-inline-dialog"));
    dialog.hidden = !dialog.hidden;
    button.setAttribute("aria-expanded", String(!dialog.hidden));
    if (!dialog.hidden) { dialog.querySelectorAll(".ap[data-lazy]").forEach(load); }
  }

  function bylineTitle(button) {
    // Confluence calls the byline item's context provider (signed, qsh) for its title.
    getJSON(button.getAttribute("data-title-src"))
      .then(function (data) { if (data && data.title) { button.textContent = "Inflow: " + data.title.value; } })
      .catch(function () {});
  }

  window.addEventListener("message", onMessage);
  document.addEventListener("DOMContentLoaded", function () {
    viewer = document.body.getAttribute("data-viewer") || "";
    document.querySelectorAll(".ap:not([data-lazy])").forEach(load);
    document.querySelectorAll("[data-inline-dialog]").forEach(function (button) {
      button.addEventListener("click", function () { toggleDialog(button); });
      bylineTitle(button);
    });
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  });
})();
