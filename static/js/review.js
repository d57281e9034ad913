// Keyboard shortcuts for the review console. j/k: next/previous, o or Enter: open,
// x: select for bulk approve, c: claim, a: approve, r: write a rejection reason,
// e: edit the draft, ?: show this help. Keys are ignored while typing in a field.
(function () {
  "use strict";
  var HELP = "j / k next · previous   o open   x select   c claim   a approve   r reject   e edit   ? help";

  function typing(event) {
    var el = event.target;
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  function click(selector) {
    var el = document.querySelector(selector);
    if (el) { el.click(); return true; }
    return false;
  }

  function focus(selector) {
    var el = document.querySelector(selector);
    if (el) { el.focus(); return true; }
    return false;
  }

  var rows = Array.prototype.slice.call(document.querySelectorAll("[data-queue-row]"));
  var at = -1;

  function select(index) {
    if (!rows.length) return;
    at = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach(function (row, i) { row.classList.toggle("rv-selected", i === at); });
    rows[at].scrollIntoView({ block: "nearest" });
  }

  function toggleHelp() {
    var box = document.getElementById("rv-help");
    if (box) { box.remove(); return; }
    box = document.createElement("div");
    box.id = "rv-help";
    box.className = "rv-help";
    box.textContent = HELP;
    document.body.appendChild(box);
  }

  // Keep the claim alive while the reviewer is working on this page; an abandoned tab lets
  // it lapse so the draft goes back to the queue.
  var renew = document.querySelector("[data-auto-renew]");
  var lastActive = Date.now();
  ["keydown", "mousemove", "input", "scroll"].forEach(function (name) {
    document.addEventListener(name, function () { lastActive = Date.now(); }, { passive: true });
  });
  function scheduleRenew(expiresMs) {
    var lease = Number(renew.dataset.lease) * 60000;
    var wait = Math.max(expiresMs - Date.now() - 120000, 5000);
    window.setTimeout(function () {
      if (Date.now() - lastActive > lease - 180000) return; // idle: let the claim lapse
      fetch(renew.action, { method: "POST", body: new FormData(renew), credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) return;
          var until = new Date(Date.now() + lease);
          var label = document.querySelector("[data-claim-until]");
          if (label) label.textContent = until.toISOString().slice(11, 16);
          scheduleRenew(until.getTime());
        });
    }, wait);
  }
  if (renew) scheduleRenew(Number(renew.dataset.expires) * 1000);

  document.addEventListener("keydown", function (event) {
    if (event.metaKey || event.ctrlKey || event.altKey || typing(event)) return;
    var key = event.key;
    var handled = true;
    if (rows.length) {
      if (key === "j") select(at + 1);
      else if (key === "k") select(at - 1);
      else if ((key === "o" || key === "Enter") && at >= 0) window.location = rows[at].dataset.href;
      else if (key === "x" && at >= 0) {
        var box = rows[at].querySelector("input[type=checkbox]");
        if (box) box.checked = !box.checked;
      } else handled = key === "?" ? (toggleHelp(), true) : false;
    } else if (key === "j") handled = click("[data-key=next]");
    else if (key === "k") handled = click("[data-key=prev]");
    else if (key === "c") handled = click("[data-shortcut=claim]");
    else if (key === "a") handled = click("[data-shortcut=approve]");
    else if (key === "r") handled = focus("[data-shortcut=reject]");
    else if (key === "e") handled = focus("#draft-text");
    else if (key === "?") toggleHelp();
    else handled = false;
    if (handled) event.preventDefault();
  });
})();
