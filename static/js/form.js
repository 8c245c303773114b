// The intake form's comforts; the form works without them. Where focus
// starts, fields marked to match live validation's messages, the birth date's
// calendar, "More details" opened for an ended encounter, and patient data
// kept out of the address bar. Reads #intake-form (its
// input[name=submission_key], [aria-invalid], [data-autofocus]), each field's
// "<id>-errors" area, button[data-picker] and input.date-picker (data-for,
// data-format, data-start), #more-details (data-open-for-status), and <main>
// on other pages (sign-in). Shows no text of its own.
(function () {
  "use strict";

  // After the form comes back with errors, move focus to the first field in
  // error (its message is linked with aria-describedby, so a screen reader
  // reads it out), or to the message above the form when no field is marked.
  // The summary itself is role=alert and is announced either way.
  function focusFirstProblem(root) {
    var target = root.querySelector("[aria-invalid=true]") || root.querySelector("[data-autofocus]");
    if (target) target.focus();
  }

  // Live validation swaps a field's error area (and, out of band, those of the
  // fields that depend on it): mark the field itself invalid or valid to match,
  // as the server does on a full submit.
  function markField(swapped) {
    // An outerHTML swap replaces the element: find its successor by id.
    var id = swapped && swapped.id;
    if (!id || id.slice(-7) !== "-errors") return;
    var errors = document.getElementById(id);
    var input = document.getElementById(id.slice(0, -7));
    if (!errors || !input) return;
    var invalid = errors.textContent.trim() !== "";
    if (invalid) {
      input.setAttribute("aria-invalid", "true");
    } else {
      input.removeAttribute("aria-invalid");
    }
    var field = input.closest(".field");
    if (field) field.classList.toggle("has-error", invalid);
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    markField(event.detail.target);
  });
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    markField(event.detail.target);
  });

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
      // Not the calendar's own date input, nor a field in a closed group.
      if (!fields[i].value && fields[i].tabIndex >= 0 && fields[i].getClientRects().length) {
        fields[i].focus();
        return;
      }
    }
  }

  // The birth date's calendar. The text box takes the date typed in the
  // clinic's order; its "Pick" button (hidden without JavaScript or where the
  // browser cannot open a date picker) opens the browser's own calendar, from
  // a nameless date input beside it, at the date typed or else at its
  // data-start, a plausible year. A pick is written into the text box the
  // clinic's way (data-format), and that box is validated as if typed.
  function pad(text) {
    return text.length < 2 ? "0" + text : text;
  }

  function isoFromTyped(typed, format) {
    var order = format.match(/DD|MM|YYYY/g);
    var value = typed.trim();
    var parts;
    if (/^\d{4}-\d{1,2}-\d{1,2}$/.test(value)) {
      order = ["YYYY", "MM", "DD"];
      parts = value.split("-");
    } else if (/^\d{8}$/.test(value)) {
      var at = 0;
      parts = order.map(function (token) {
        at += token.length;
        return value.slice(at - token.length, at);
      });
    } else {
      parts = value.split(/[-.\/]/);
    }
    if (parts.length !== 3) return "";
    var found = {};
    for (var i = 0; i < 3; i++) {
      if (!/^\d+$/.test(parts[i])) return "";
      found[order[i]] = parts[i];
    }
    if (found.YYYY.length !== 4) return "";
    var iso = found.YYYY + "-" + pad(found.MM) + "-" + pad(found.DD);
    var date = new Date(iso + "T00:00:00Z");
    return !isNaN(date.getTime()) && date.toISOString().slice(0, 10) === iso ? iso : "";
  }

  function showDatePickers(root) {
    if (!root || !root.querySelectorAll || !("showPicker" in HTMLInputElement.prototype)) return;
    var buttons = root.querySelectorAll("button[data-picker][hidden]");
    for (var i = 0; i < buttons.length; i++) buttons[i].hidden = false;
  }

  document.addEventListener("DOMContentLoaded", function () { showDatePickers(document); });
  document.addEventListener("htmx:load", function (event) { showDatePickers(event.detail.elt); });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-picker]");
    if (!button) return;
    var picker = document.getElementById(button.dataset.picker);
    var text = document.getElementById(picker.dataset.for);
    picker.value = isoFromTyped(text.value, picker.dataset.format) || picker.value || picker.dataset.start;
    picker.showPicker();
  });

  // In the capture phase, so the calendar's own change never reaches the
  // field's live validation: the text box's change, sent below, does.
  document.addEventListener("change", function (event) {
    var picker = event.target;
    if (!picker.classList || !picker.classList.contains("date-picker")) return;
    event.stopPropagation();
    if (!picker.value) return;
    var ymd = picker.value.split("-");
    var text = document.getElementById(picker.dataset.for);
    text.value = picker.dataset.format
      .replace("YYYY", ymd[0]).replace("MM", ymd[1]).replace("DD", ymd[2]);
    text.focus();
    text.dispatchEvent(new Event("change", { bubbles: true }));
  }, true);

  // An ended encounter usually has an end time: choosing such a status opens
  // the group that holds it (data-open-for-status), without moving focus.
  document.addEventListener("change", function (event) {
    if (event.target.name !== "encounter_status") return;
    var more = document.getElementById("more-details");
    var statuses = more ? (more.dataset.openForStatus || "").split(" ") : [];
    if (statuses.indexOf(event.target.value) !== -1) more.open = true;
  });

  // Patient data out of the address bar. A deep link's details (a patient's
  // name and identifier) are read by the server, which keeps them with the
  // form and answers with an address holding only the form's key. Should the
  // page still show any other parameter (an old bookmark, a cached page),
  // replace the address, so it stays out of history, bookmarks and
  // screenshots of the address bar.
  function addressOnlyKey() {
    var form = document.getElementById("intake-form");
    var key = form && form.querySelector("input[name=submission_key]");
    if (!key || !window.history.replaceState) return;
    var params = new URLSearchParams(window.location.search);
    if (params.toString() === "key=" + encodeURIComponent(key.value)) return;
    window.history.replaceState(
      window.history.state, "", window.location.pathname + "?key=" + key.value
    );
  }

  document.addEventListener("DOMContentLoaded", addressOnlyKey);

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("intake-form");
    if (!form) {
      // Other pages (sign-in) point out their own first problem the same way.
      var main = document.querySelector("main");
      if (main) focusFirstProblem(main);
      return;
    }
    if (form.querySelector("[data-autofocus], [aria-invalid=true]")) {
      focusFirstProblem(form);
    } else {
      focusFirstEmpty(form);
    }
  });
})();
