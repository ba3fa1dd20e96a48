// deskbridge pages: everything works without this file. It adds live updates (Server-Sent Events),
// local times, files dropped or pasted into forms, and small conveniences. No inline script
// anywhere: the CSP allows only this file.
(function () {
  "use strict";

  // Times: the server writes UTC; show them in the browser's zone and language.
  function localizeTimes(root) {
    var lang = document.documentElement.lang || "en";
    var fmt;
    try {
      fmt = new Intl.DateTimeFormat(lang === "id" ? "id-ID" : "en-GB", {
        dateStyle: "medium", timeStyle: "short"
      });
    } catch (e) { return; }
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) { el.textContent = fmt.format(d); el.title = el.getAttribute("datetime"); }
    });
  }

  // Live parts: on each event, fetch this page again and swap every [data-live] region, so the
  // HTML is rendered by the server only. Forms being typed in live outside those regions.
  var refreshing = false, again = false;
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(window.location.pathname + window.location.search, {
      credentials: "same-origin", headers: { "Accept": "text/html" }
    }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      document.querySelectorAll("[data-live]").forEach(function (el) {
        var key = el.getAttribute("data-live");
        var fresh = Array.prototype.find.call(doc.querySelectorAll("[data-live]"), function (n) {
          return n.getAttribute("data-live") === key;
        });
        if (fresh && fresh.innerHTML !== el.innerHTML) {
          el.innerHTML = fresh.innerHTML;
          localizeTimes(el);
        }
      });
      document.body.setAttribute("data-live-updated", String(Date.now()));
    }).catch(function () { /* the next event or reconnect tries again */ })
      .then(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  function live() {
    if (!window.EventSource || !document.querySelector("[data-live]")) { return; }
    var m = window.location.pathname.match(/^\/tickets\/([^/]+)$/);
    var url = "/events" + (m && m[1] !== "new" ? "?ticket=" + encodeURIComponent(m[1]) : "");
    var source = new EventSource(url);
    source.addEventListener("change", refresh);
    source.addEventListener("open", function () {
      document.body.setAttribute("data-stream", "connected");
    });
  }

  // Files as people add them: dropped on or pasted into a form with a drop zone, they join the
  // form's file input (so the form posts them as if chosen), listed with a way to remove each.
  // A file over the form's stated limit (data-max-bytes) is refused here and never sent.
  function readableSize(n) {
    if (n >= 1048576) { return (n / 1048576).toFixed(1) + " MB"; }
    if (n >= 1024) { return Math.ceil(n / 1024) + " KB"; }
    return n + " B";
  }

  function attachments(zone) {
    var form = zone.closest("form");
    var input = form && form.querySelector("input[type=file]");
    var status = form && form.querySelector("[data-file-status]");
    if (!input || !status || typeof DataTransfer === "undefined") { return; }
    var max = Number(form.getAttribute("data-max-bytes")) || 0;
    var list = zone.querySelector("ul");
    zone.hidden = false;

    function keep(files, refused) {
      var dt = new DataTransfer();
      Array.prototype.forEach.call(files, function (f) {
        if (max && f.size > max) { refused.push(f.name); } else { dt.items.add(f); }
      });
      return dt;
    }

    function show() {
      list.textContent = "";
      Array.prototype.forEach.call(input.files, function (f, i) {
        var item = document.createElement("li");
        item.appendChild(document.createTextNode(f.name + " (" + readableSize(f.size) + ") "));
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "small";
        remove.textContent = zone.getAttribute("data-remove");
        remove.setAttribute("aria-label", zone.getAttribute("data-remove") + " " + f.name);
        remove.addEventListener("click", function () {
          var dt = new DataTransfer();
          Array.prototype.forEach.call(input.files, function (g, j) { if (j !== i) { dt.items.add(g); } });
          input.files = dt.files;
          status.textContent = zone.getAttribute("data-removed") + " " + f.name;
          show();
          input.focus();
        });
        item.appendChild(remove);
        list.appendChild(item);
      });
    }

    function report(added, refused) {
      var parts = [];
      if (refused.length) { parts.push(zone.getAttribute("data-too-large") + " " + refused.join(", ")); }
      if (added.length) { parts.push(zone.getAttribute("data-added") + " " + added.join(", ")); }
      status.className = "file-status" + (refused.length ? " field-error" : "");
      status.textContent = parts.join(" ");
    }

    function add(files) {
      var refused = [], added = [];
      var dt = keep(input.files, []);
      Array.prototype.forEach.call(keep(files, refused).files, function (f) {
        dt.items.add(f);
        added.push(f.name);
      });
      input.files = dt.files;
      report(added, refused);
      show();
    }

    // Files chosen with the input itself are checked the same way.
    input.addEventListener("change", function () {
      var refused = [];
      var dt = keep(input.files, refused);
      if (refused.length) { input.files = dt.files; }
      report([], refused);
      show();
    });
    form.addEventListener("dragover", function (e) {
      if (e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types, "Files") >= 0) {
        e.preventDefault();
        zone.classList.add("over");
      }
    });
    form.addEventListener("dragleave", function () { zone.classList.remove("over"); });
    form.addEventListener("drop", function (e) {
      zone.classList.remove("over");
      if (e.dataTransfer && e.dataTransfer.files.length) {
        e.preventDefault();
        add(e.dataTransfer.files);
      }
    });
    // Only files are taken from a paste; text still lands in the field being typed in.
    form.addEventListener("paste", function (e) {
      if (e.clipboardData && e.clipboardData.files.length) {
        e.preventDefault();
        add(e.clipboardData.files);
      }
    });
    form.addEventListener("submit", function (e) {
      var refused = [];
      keep(input.files, refused);
      if (refused.length) { e.preventDefault(); report([], refused); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
    live();
    document.querySelectorAll("[data-dropzone]").forEach(attachments);
    var summary = document.getElementById("error-summary");
    if (summary) { summary.focus(); }
  });
})();
