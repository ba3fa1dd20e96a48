// deskbridge pages: everything works without this file. It adds live updates (Server-Sent Events),
// local times, and small conveniences. No inline script anywhere: the CSP allows only this file.
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

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
    live();
    var summary = document.getElementById("error-summary");
    if (summary) { summary.focus(); }
  });
})();
