// Live updates for the notifyd status page: every few seconds, fetch this page's <main> again and
// swap it in when it changed, unless the reader is using a control in it. No framework, no build.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !main.dataset.live) { return; }
  var every = 2000;
  function busy() {
    var active = document.activeElement;
    return active && main.contains(active) && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(active.tagName);
  }
  function refresh() {
    if (document.hidden || busy()) { return; }
    fetch(main.dataset.live, { headers: { "X-Notifyd-Live": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html != null && !busy() && Object.assign(document.createElement("template"), { innerHTML: html }).innerHTML.trim() !== main.innerHTML.trim()) { main.innerHTML = html; }
      })
      .catch(function () { /* the daemon is restarting: try again at the next tick */ });
  }
  window.setInterval(refresh, every);
})();
