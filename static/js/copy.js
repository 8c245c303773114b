// Copy buttons: a press copies the text of the element a button names and
// says how that went. Reads button[data-copy-target] (the id of the element
// whose text is copied) and, in the button's <section>, .copy-status, whose
// data-copied-text and data-failed-text hold the sentences to show.
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
    return ok ? Promise.resolve() : Promise.reject(new Error("execCommand"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.dataset.copyTarget);
    var status = button.closest("section").querySelector(".copy-status");
    copyText(source.textContent.trim()).then(
      function () {
        button.dataset.copied = "true";
        if (status) status.textContent = status.dataset.copiedText || "";
      },
      function () {
        if (status) status.textContent = status.dataset.failedText || "";
      }
    );
  });
})();
