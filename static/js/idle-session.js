// Idle sign-out's warning, countdown and "Stay signed in". Reads <body>'s
// data-idle-timeout, data-idle-warning (seconds), data-session-url,
// data-login-url and data-draft-url; #idle-warning, whose data-* attributes
// hold the words (data-announce, data-second-one, data-second-other,
// data-minutes, with %(name)s placeholders for the numbers); #idle-countdown,
// #idle-announce, #idle-stay-form; and #intake-form, whose typing is handed
// to the server when the session has ended. Tells other tabs a page opened
// (BroadcastChannel "intake-session").
(function () {
  "use strict";

  // A message as the template wrote it, its %(name)s / %(name)d placeholders
  // filled; shown with textContent, never parsed as HTML.
  function fill(message, values) {
    return (message || "").replace(/%\((\w+)\)[sd]/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  // Idle sign-out. The server signs out a user idle for data-idle-timeout
  // seconds; this warns data-idle-warning seconds before and asks the server
  // before acting (another tab may have been busy). While the warning shows,
  // any key or click keeps the session. Focus is left where it is: moving it
  // would commit a half-typed field. When the session has ended the page
  // leaves for the sign-in page, so no patient data stays on an unattended
  // screen; a form's typing is handed to the server first, which keeps it for
  // this user until they sign in again.
  function setUpIdleWarning() {
    var body = document.body;
    var timeout = Number(body.dataset.idleTimeout);
    var warning = Number(body.dataset.idleWarning);
    if (!timeout || !warning) return;
    var sessionUrl = body.dataset.sessionUrl;
    var dialog = document.getElementById("idle-warning");
    var countdown = document.getElementById("idle-countdown");
    var announce = document.getElementById("idle-announce");
    var stayForm = document.getElementById("idle-stay-form");
    var words = dialog.dataset;
    var timer = null;
    var ticker = null;
    var leaving = false;
    var deadline = Date.now() + timeout * 1000;

    function schedule(ms) {
      clearTimeout(timer);
      timer = setTimeout(check, Math.max(250, ms));
    }

    // "5 seconds", "1 second", "1:30 minutes", in the template's words.
    function format(seconds) {
      var s = Math.max(0, Math.ceil(seconds));
      var m = Math.floor(s / 60);
      var rest = s % 60;
      if (!m) return fill(rest === 1 ? words.secondOne : words.secondOther, { n: rest });
      return fill(words.minutes, { m: m, ss: (rest < 10 ? "0" : "") + rest });
    }

    function tick() {
      var left = (deadline - Date.now()) / 1000;
      countdown.textContent = format(left);
      if (left <= 0) check();
    }

    function showWarning() {
      if (!dialog.hidden) return;
      dialog.hidden = false;
      tick();
      announce.textContent = fill(words.announce, { time: format((deadline - Date.now()) / 1000) });
      clearInterval(ticker);
      ticker = setInterval(tick, 1000);
    }

    function hideWarning() {
      clearInterval(ticker);
      dialog.hidden = true;
      announce.textContent = "";
    }

    function update(state) {
      if (!state.signed_in) return leave();
      deadline = Date.now() + state.expires_in * 1000;
      if (state.expires_in > warning) {
        hideWarning();
        schedule((state.expires_in - warning) * 1000);
      } else {
        showWarning();
        schedule(state.expires_in * 1000 + 500);
      }
    }

    function check() {
      if (leaving) return;
      fetch(sessionUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(update, function () { schedule(15000); });
    }

    function stay() {
      fetch(stayForm.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        body: new FormData(stayForm),
      })
        .then(function (response) { return response.json(); })
        .then(update, function () { schedule(5000); });
    }

    function leave() {
      leaving = true;
      clearTimeout(timer);
      hideWarning();
      var here = window.location.pathname + window.location.search;
      var signIn = body.dataset.loginUrl + "?next=" + encodeURIComponent(here);
      var form = document.getElementById("intake-form");
      if (!form) {
        window.location.assign(signIn);
        return;
      }
      // Live validation, signed out, keeps the form for this user and answers
      // with the sign-in page that leads back to it.
      fetch(body.dataset.draftUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "HX-Request": "true", "HX-Current-URL": window.location.href },
        body: new FormData(form),
      }).then(
        function (response) { window.location.assign(response.headers.get("HX-Redirect") || signIn); },
        function () { window.location.assign(signIn); }
      );
    }

    stayForm.addEventListener("submit", function (event) {
      event.preventDefault();
      stay();
    });
    // A press that sends something itself (a submit button, a link, Enter in
    // a form) reaches the server anyway; a separate "stay" beside it would race
    // it once the session has run out.
    function sendsItself(event) {
      var target = event.target;
      if (!target || !target.closest) return false;
      if (target.closest("button, input[type=submit], a[href]")) return true;
      return event.type === "keydown" && event.key === "Enter" && !!target.closest("form");
    }

    function activityWhileWarned(event) {
      if (dialog.hidden || leaving) return;
      if (event.target && event.target.closest && event.target.closest("#idle-warning")) return;
      hideWarning();
      if (sendsItself(event)) return;
      stay();
    }
    document.addEventListener("keydown", activityWhileWarned, true);
    document.addEventListener("pointerdown", activityWhileWarned, true);

    // Anything sent to the server counts as activity there too.
    document.addEventListener("htmx:afterRequest", function () {
      if (leaving) return;
      deadline = Date.now() + timeout * 1000;
      hideWarning();
      schedule((timeout - warning) * 1000);
    });
    schedule((timeout - warning) * 1000);
  }

  document.addEventListener("DOMContentLoaded", setUpIdleWarning);

  // Every page that opens tells the site's other tabs, which may have to
  // check that their session is still theirs: a sign-out, or someone else
  // signing in on this computer, ends a recording under way at once
  // (recorder.js listens).
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.BroadcastChannel) return;
    var channel = new BroadcastChannel("intake-session");
    channel.postMessage("page-opened");
    channel.close();
  });
})();
