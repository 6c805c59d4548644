// ray-runner web view: refresh the page's <main> while what it shows is still changing.
// A page that may change names a small JSON endpoint in <main data-poll="..."> and the version
// it was drawn at in data-version; once a second the script asks the endpoint for the version
// and, only when it differs, fetches the page again and swaps in its <main>. A finished run's
// page names no endpoint, so nothing is polled.
(function () {
  "use strict";
  var INTERVAL_MS = 1000;
  var timer = null;

  function main() { return document.getElementById("main"); }

  function schedule() {
    var el = main();
    if (!el || !el.dataset.poll) { return; }
    timer = window.setTimeout(poll, INTERVAL_MS);
  }

  function busy() {
    // never replace the page under someone typing in a form
    var active = document.activeElement;
    return active && (active.tagName === "INPUT" || active.tagName === "SELECT" || active.tagName === "TEXTAREA");
  }

  function poll() {
    var el = main();
    if (!el || !el.dataset.poll) { return; }
    if (document.hidden || busy()) { schedule(); return; }
    fetch(el.dataset.poll, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) {
        if (!answer || answer.version === el.dataset.version) { schedule(); return; }
        return refresh();
      })
      .catch(function () { schedule(); });
  }

  function refresh() {
    return fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("main");
        var el = main();
        if (fresh && el) {
          el.innerHTML = fresh.innerHTML;
          if (fresh.dataset.poll) {
            el.dataset.poll = fresh.dataset.poll;
            el.dataset.version = fresh.dataset.version || "";
          } else {
            delete el.dataset.poll;
          }
          document.body.dataset.refreshed = String(Date.now());
        }
        schedule();
      })
      .catch(function () { schedule(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var el = main();
    if (el && el.dataset.poll) { poll(); }
  });
})();
