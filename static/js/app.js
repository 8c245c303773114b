// Small behaviours on top of server-rendered pages. No inline scripts: the
// pages work without JavaScript, and this file only adds comfort.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-HTTP fallback (the sandbox on 127.0.0.1 is a secure context, a LAN
    // address is not).
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy failed"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.dataset.copyTarget);
    var status = button.closest("section").querySelector(".copy-status");
    copyText(source.textContent.trim()).then(
      function () {
        button.dataset.copied = "true";
        if (status) status.textContent = "Copied to the clipboard.";
      },
      function () {
        if (status) status.textContent = "Could not copy: select the text and copy it by hand.";
      }
    );
  });

  // After the form comes back with errors, move focus to the summary so
  // keyboard and screen-reader users land on what needs fixing.
  function focusFirstProblem(root) {
    var target = root.querySelector("[data-autofocus]") || root.querySelector("[aria-invalid=true]");
    if (target) target.focus();
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "intake-form") {
      focusFirstProblem(document.getElementById("intake-form") || document);
    }
  });

  // A fresh form starts the cursor in the first empty field, so a clinician
  // (or a prefilled deep link) can type straight away.
  function focusFirstEmpty(form) {
    var fields = form.querySelectorAll("input:not([type=hidden]), select");
    for (var i = 0; i < fields.length; i++) {
      if (!fields[i].value) {
        fields[i].focus();
        return;
      }
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("intake-form");
    if (!form) return;
    if (form.querySelector("[data-autofocus], [aria-invalid=true]")) {
      focusFirstProblem(form);
    } else {
      focusFirstEmpty(form);
    }
  });
})();
