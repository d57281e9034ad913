/* Steward's page helpers (no framework): submit once, confirm dialogs, the unread badge,
   local times. Every page works without this file; it only makes them nicer. */
(function () {
  "use strict";

  // A form marked data-submit-once sends once: a double click or a second Enter does nothing.
  // (The server also guards with the form's one-time token, so this is for the person.)
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("[data-submit-once]")) return;
    if (form.dataset.submitting) {
      event.preventDefault();
      return;
    }
    form.dataset.submitting = "1";
    form.setAttribute("aria-busy", "true");
    var buttons = form.querySelectorAll("button[type=submit], button:not([type])");
    window.setTimeout(function () {
      buttons.forEach(function (button) {
        button.disabled = true;
        if (button.dataset.busyLabel) {
          button.dataset.label = button.textContent;
          button.textContent = button.dataset.busyLabel;
        }
      });
    }, 0);
  });

  // Coming back with the back button shows the page from cache: make its forms usable again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-submitting]").forEach(function (form) {
      delete form.dataset.submitting;
      form.removeAttribute("aria-busy");
      form.querySelectorAll("button").forEach(function (button) {
        button.disabled = false;
        if (button.dataset.label) button.textContent = button.dataset.label;
      });
    });
  });

  // Links with data-confirm="<dialog id>" open that dialog; without JS they lead to a
  // confirmation page that does the same.
  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("[data-confirm]");
    if (opener) {
      var dialog = document.getElementById(opener.dataset.confirm);
      if (dialog && typeof dialog.showModal === "function") {
        event.preventDefault();
        dialog.showModal();
        var first = dialog.querySelector("button[type=submit]");
        if (first) first.focus();
      }
      return;
    }
    var copier = event.target.closest && event.target.closest("[data-copy]");
    if (copier && navigator.clipboard) {
      var source = document.getElementById(copier.dataset.copy);
      navigator.clipboard.writeText(source.value || source.textContent).then(function () {
        copier.textContent = copier.dataset.copiedLabel || "Copied";
      });
      return;
    }
    var closer = event.target.closest && event.target.closest("[data-close-dialog]");
    if (closer) {
      var open = closer.closest("dialog");
      if (open) open.close();
    }
  });

  // Times are rendered in UTC by the server; show them in the reader's own time zone.
  function localize(root) {
    (root || document).querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      el.title = when.toLocaleString();
      el.textContent = el.hasAttribute("data-time-only")
        ? when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false })
        : when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    });
  }

  // The header's unread count: refreshed every 15 s and whenever the tab comes back.
  function refreshUnread() {
    var badge = document.querySelector("[data-unread-count]");
    if (!badge || !window.fetch) return Promise.resolve();
    return fetch(badge.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body) return;
        badge.textContent = String(body.unread);
        badge.classList.toggle("is-zero", body.unread === 0);
        badge.setAttribute("aria-label", body.unread + " unread");
      })
      .catch(function () {});
  }

  window.Steward = { localize: localize, refreshUnread: refreshUnread };

  document.addEventListener("DOMContentLoaded", function () {
    localize(document);
    var errors = document.getElementById("form-errors");
    if (errors) {
      var firstBad = document.querySelector("[aria-invalid=true]");
      (firstBad || errors).focus();
    }
    if (document.querySelector("[data-unread-count]")) {
      window.setInterval(refreshUnread, 15000);
      document.addEventListener("visibilitychange", function () {
        if (!document.hidden) refreshUnread();
      });
    }
  });
})();
