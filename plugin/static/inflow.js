/* Inflow iframe enhancements: actions post JSON with a context JWT from all.js. */
(function () {
  "use strict";
  var AP = window.AP;
  if (AP && AP.theming && AP.theming.initializeTheming) { AP.theming.initializeTheming(); }

  function resize() { if (AP && AP.resize) { AP.resize(); } }

  // Framed without AP: the host is there but Atlassian's all.js (from its CDN) did not load,
  // and telling someone inside Jira to open the page inside Jira sends them looking elsewhere.
  function noHostMessage() {
    if (AP || window.self === window.top) { return "Open this page inside Jira or Confluence."; }
    var product = document.body.getAttribute("data-source") === "confluence" ? "Confluence" : "Jira";
    return "Atlassian's page script (all.js) did not load, so this button cannot reach " + product + ". Check the network and reload.";
  }

  function token() {
    return new Promise(function (resolve, reject) {
      if (!AP || !AP.context || !AP.context.getToken) { reject(new Error(noHostMessage())); return; }
      AP.context.getToken(function (t) { t ? resolve(t) : reject(new Error("Your session expired; reload the page.")); });
    });
  }

  // `form`: the form that sent the request, whose fields a refusal names.
  function api(method, path, body, form) {
    return token().then(function (t) {
      var init = { method: method, headers: { "Authorization": "JWT " + t, "Accept": "application/json" } };
      if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
      return fetch(path, init);
    }).then(function (r) {
      if (r.status === 204) { return {}; }
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) { var e = new Error(messageOf(data, form)); e.data = data; throw e; }
        return data;
      });
    });
  }

  // What a refusal says: each field's own messages, as the general "Some fields are not valid."
  // says nothing to act on (it is used only when no field says more). A form of several fields
  // names each field as the page labels it; in a form of one the message sits by its only box,
  // where naming the box again only repeats what its label and the message already say.
  function messageOf(data, form) {
    var errs = data.errors || {}, named = form && shownFields(form) > 1;
    var parts = Object.keys(errs).map(function (k) {
      var text = [].concat(flat(errs[k])).join(" ");
      return named ? fieldName(form, k) + ": " + text : text;
    });
    return parts.length ? parts.join(" ") : (data.message || "Something went wrong.");
  }
  function shownFields(form) {
    return Array.prototype.filter.call(form.elements, function (el) { return el.name && el.type !== "hidden"; }).length;
  }
  // A field as the form labels it ("Learn from these projects"), not as the API names it.
  function fieldName(form, name) {
    var input = form.querySelector('[name="' + name.replace(/["\\]/g, "") + '"]');
    var label = input && input.id && form.querySelector('label[for="' + input.id + '"]');
    var text = label ? label.textContent.replace(/\s+/g, " ").trim() : "";
    return text || name.replace(/_/g, " ");
  }
  function flat(v) { return (v && typeof v === "object" && !Array.isArray(v)) ? Object.keys(v).map(function (k) { return flat(v[k]); }) : v; }

  // Each row and form has its own role=status region; the nearest visible one speaks.
  function setStatus(box, text, bad) {
    var el = box && (box.querySelector(":scope > .status") || box.querySelector(".status"));
    if (el) { el.textContent = text; el.classList.toggle("bad", !!bad); }
    resize();
  }

  function setPath(obj, path, value) {
    var keys = path.split("."), last = keys.pop();
    keys.forEach(function (k) { obj = obj[k] = obj[k] || {}; });
    obj[last] = value;
  }

  function formBody(form) {
    var body = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name) { return; }
      var type = el.getAttribute("data-type"), v;
      if (el.type === "checkbox") { v = el.checked; }
      else if (type === "int") {
        if (el.value === "") { return; }  // left out, so the stored value stays (a save changes what it sends)
        v = parseInt(el.value, 10);
        if (isNaN(v)) { v = el.value; }
      }
      else if (type === "list") { v = el.value.split(/[,\n]/).map(function (s) { return s.trim(); }).filter(Boolean); }
      else { v = el.value; }
      setPath(body, el.name, v);
    });
    return body;
  }

  var done = {
    asked: function (form, data) {
      var list = document.getElementById("questions"), none = document.getElementById("no-questions");
      if (none) { none.remove(); }
      if (list) {
        var li = document.createElement("li"); li.className = "row small";
        li.textContent = "You asked " + (data.expert && data.expert.name || "the expert") + " · waiting for an answer";
        list.insertBefore(li, list.firstChild);
      }
      form.hidden = true;
      return "Question posted as your comment.";
    },
    thanked: function (form) { form.querySelector("textarea").value = ""; form.hidden = true; return "Thanks sent."; },
    accepted: function (btn) {
      btn.disabled = true;
      var state = btn.closest("li") && btn.closest("li").querySelector(".loz");  // "Waiting" no longer
      if (state) { state.textContent = "Accepted"; state.className = "loz ok"; }
      return "Answer accepted.";
    },
    saved: function () { return "Settings saved."; },
    prefs: function () { return "Preferences saved."; },
    erased: function (form) {
      form.querySelector("button").disabled = true;
      var known = document.getElementById("known");  // what the page showed is gone now
      if (known) { known.replaceChildren(Object.assign(document.createElement("p"), {className: "empty", textContent: "Inflow no longer holds your work, questions, kudos or feedback."})); }
      return "Your data was erased.";
    },
    backfill: function (form, data) { showBackfill(data); watchBackfill(form); return data.active ? "Backfill requested." : "Backfill is " + data.status + "."; }
  };

  // The admin page's backfill card: filled from GET /api/admin/backfill while one is queued or running.
  var BACKFILL_WORDS = { never: "Not run yet", queued: "Queued", running: "Running", done: "Done", failed: "Failed (will resume from its checkpoint)" };
  function number(n) { return Number(n || 0).toLocaleString("en-US"); }  // as the server writes it: 4,649
  function when(iso) { return iso ? String(iso).slice(0, 16).replace("T", " ") + " UTC" : "\u2014"; }
  function setText(id, text) { var el = document.getElementById(id); if (el) { el.textContent = text; } }
  function showBackfill(data) {
    setText("bf-status", BACKFILL_WORDS[data.status] || data.status);
    // The total is the site's estimate, given while reading; once done, the count read is exact.
    var total = data.items_total && data.status !== "done" ? " of about " + number(data.items_total) : "";
    setText("bf-done", number(data.items_done) + total);
    setText("bf-checkpoint", when(data.checkpoint_at));
    setText("bf-finished", when(data.finished_at));
    var list = document.getElementById("bf-errors");
    if (list) {
      list.textContent = "";
      (data.errors && data.errors.length ? data.errors : [null]).forEach(function (e) {
        var li = document.createElement("li"), div = document.createElement("div");
        li.className = "row"; div.className = "grow";
        div.textContent = e ? when(e.at) + " " + e.error : "No errors.";  // as the page first shows it
        li.appendChild(div); list.appendChild(li);
      });
    }
    resize();
  }
  var polling = false;
  function watchBackfill(form, rounds) {
    if (polling && rounds === undefined) { return; }
    polling = true;
    rounds = rounds === undefined ? 600 : rounds;
    setTimeout(function () {
      api("GET", form.getAttribute("data-status")).then(function (data) {
        showBackfill(data);
        if (data.active && rounds > 0) { watchBackfill(form, rounds - 1); } else { polling = false; }
      }).catch(function () { polling = false; });
    }, 3000);
  }

  function onSubmit(ev) {
    var form = ev.target;
    if (form.hasAttribute("data-download")) { ev.preventDefault(); return download(form); }
    if (!form.hasAttribute("data-api")) { return; }
    ev.preventDefault();
    var submit = form.querySelector("[type=submit]"); if (submit) { submit.disabled = true; }
    setStatus(form, "Saving…");
    api("POST", form.getAttribute("data-api"), formBody(form), form).then(function (data) {
      var text = (done[form.getAttribute("data-done")] || function () { return "Done."; })(form, data);
      var holder = form.hidden ? form.parentNode : form;
      setStatus(holder, text);
      if (submit && form.getAttribute("data-done") !== "erased") { submit.disabled = false; }  // erasing is done once
    }).catch(function (e) { setStatus(form, e.message, true); if (submit) { submit.disabled = false; } });
  }

  function download(form) {
    setStatus(form, "Preparing your data…");
    api("GET", form.getAttribute("data-download")).then(function (data) {
      var blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
      var a = document.createElement("a");
      a.href = URL.createObjectURL(blob); a.download = "inflow-my-data.json";
      document.body.appendChild(a); a.click(); a.remove();
      setStatus(form, "Downloaded inflow-my-data.json.");
    }).catch(function (e) { setStatus(form, e.message, true); });
  }

  function onClick(ev) {
    var el = ev.target.closest("[data-toggle],[data-post],[data-track]");
    if (!el) { return; }
    if (el.hasAttribute("data-toggle")) {
      var target = document.getElementById(el.getAttribute("data-toggle"));
      target.hidden = !target.hidden;
      document.querySelectorAll('[aria-controls="' + target.id + '"]').forEach(function (b) { b.setAttribute("aria-expanded", String(!target.hidden)); });
      if (!target.hidden) { var f = target.querySelector("textarea,input[type=text]"); if (f) { f.focus(); } }
      resize();
    } else if (el.hasAttribute("data-post")) {
      post(el);
    } else {
      var b = document.body.dataset;
      api("POST", "/api/events", { source: b.source, key: b.key, panel: "reuse", kind: "clicked", target: el.getAttribute("data-track") }).catch(function () {});
    }
  }

  function post(btn) {
    var row = btn.closest(".grow") || btn.parentNode;
    btn.disabled = true;
    api("POST", btn.getAttribute("data-post"), JSON.parse(btn.getAttribute("data-body") || "{}")).then(function (data) {
      var group = btn.getAttribute("data-group");
      if (group) {
        document.querySelectorAll('[data-group="' + group + '"]').forEach(function (b) { b.setAttribute("aria-pressed", String(b === btn)); });
      }
      var doneName = btn.getAttribute("data-done");
      if (data.link_type) { btn.textContent = data.link_type === "duplicate" ? "Linked as duplicate" : "Linked as related"; btn.setAttribute("data-done", "linked"); }
      var text = doneName ? done[doneName](btn, data) : (data.link_type ? "Linked " + data.key + " to " + data.target_key + "." : "Thanks for the feedback.");
      setStatus(row, text);
      if (!btn.getAttribute("data-done")) { btn.disabled = false; }  // accept and link are done once
    }).catch(function (e) { setStatus(row, e.message, true); btn.disabled = false; });
  }

  document.addEventListener("submit", onSubmit);
  document.addEventListener("click", onClick);
  document.addEventListener("DOMContentLoaded", function () {
    var card = document.getElementById("backfill");
    if (card && card.getAttribute("data-active") === "true") { watchBackfill(card); }
    resize();
  });
})();
