// Live updates for the notifyd status page: every few seconds, fetch this page's <main> again and
// swap it in when it changed, unless the reader is in it (focus or a selection). One request at a
// time, and slower when the daemon is slow to answer. No framework, no build.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !main.dataset.live) { return; }
  var every = 2000;
  function busy() {
    var active = document.activeElement;
    var selection = window.getSelection();
    return (active && active !== document.body && main.contains(active)) ||
      (selection && !selection.isCollapsed && main.contains(selection.anchorNode));
  }
  function same(html) {
    var parsed = document.createElement("template");
    parsed.innerHTML = html;                       // both sides written the browser's way
    return parsed.innerHTML.trim() === main.innerHTML.trim();
  }
  function next(elapsed) {
    window.setTimeout(refresh, Math.max(every, 5 * elapsed));
  }
  function refresh() {
    if (document.hidden || busy()) { next(0); return; }
    var started = Date.now();
    fetch(main.dataset.live, { headers: { "X-Notifyd-Live": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html != null && !busy() && !same(html)) { main.innerHTML = html; }
      })
      .catch(function () { /* the daemon is restarting: try again at the next tick */ })
      .then(function () { next(Date.now() - started); });
  }
  next(0);
})();
