/* The job page's live view. Listens to /jobs/<id>/events/ (Server-Sent Events) and updates
   the status, progress markers, timeline and partial output without reloading.

   Every event has an integer id. The browser resends the last one (Last-Event-ID) when it
   reconnects, and this script also ignores any id it has already applied, so a dropped
   connection loses nothing and shows nothing twice.

   Streamed text is appended as it arrives. Every other event is a cue to re-read the page's
   sections marked data-live (badge, sentence, markers, timeline, controls, attempts, steps)
   from one server render and swap them in together, so no part of the page runs ahead of
   another: the badge never says Failed beside a Cancel button, nor the timeline "Model
   working" beside a Queued badge. Only if that read fails are the events applied here. */
(function () {
  "use strict";
  var configEl = document.getElementById("job-live-config");
  if (!configEl || !window.EventSource) return;
  var config = JSON.parse(configEl.textContent);
  var hidden = new Set(config.hiddenKinds);
  var seen = new Set();
  var lastId = config.lastEventId;
  var source = null;
  var refreshTimer = null;
  var retryTimer = null;
  var waiting = []; // events not yet shown: the next refresh shows them
  var ended = false; // the stream said the job is finished
  var liveState = document.getElementById("live-state");

  document.querySelectorAll("#timeline [data-event-id]").forEach(function (li) {
    seen.add(Number(li.dataset.eventId));
  });

  function setState(text, cls) {
    if (!liveState) return;
    liveState.textContent = text;
    liveState.className = "live-state " + (cls || "");
  }

  function label(kind) {
    return config.eventLabels[kind] || kind.replace(/_/g, " ").replace(/^./, function (c) { return c.toUpperCase(); });
  }

  function actorName(actor) {
    return !actor || actor.indexOf("system") === 0 ? "Steward" : actor;
  }

  function timeEl(iso) {
    var el = document.createElement("time");
    el.setAttribute("datetime", iso);
    el.setAttribute("data-local", "");
    el.setAttribute("data-time-only", "");
    el.textContent = iso.substr(11, 8);
    return el;
  }

  function addToTimeline(event) {
    var list = document.getElementById("timeline");
    if (!list || list.querySelector('[data-event-id="' + event.id + '"]')) return;
    var li = document.createElement("li");
    li.dataset.eventId = String(event.id);
    li.className = "tl-" + event.kind + " is-new";
    li.appendChild(timeEl(event.created_at));
    var body = document.createElement("div");
    var strong = document.createElement("strong");
    strong.textContent = label(event.kind);
    body.appendChild(strong);
    if (event.message && event.message.replace(/\.$/, "") !== label(event.kind)) {
      var msg = document.createElement("span");
      msg.className = "tl-msg";
      msg.textContent = " " + event.message;
      body.appendChild(msg);
    }
    var actor = document.createElement("span");
    actor.className = "tl-actor";
    actor.textContent = actorName(event.actor);
    body.appendChild(document.createTextNode(" "));
    body.appendChild(actor);
    li.appendChild(body);
    list.appendChild(li);
    var empty = document.getElementById("timeline-empty");
    if (empty) empty.hidden = true;
    if (window.Steward) window.Steward.localize(li);
  }

  // The markers an event reaches: by its kind, or by the status it moves the job into
  // (jobs/explain.py MARKERS, passed in as markerRules).
  function markersOf(event) {
    var keys = (config.markerRules.kinds[event.kind] || []).slice();
    if (event.to_status && event.to_status !== event.from_status) {
      keys = keys.concat(config.markerRules.statuses[event.to_status] || []);
    }
    return keys;
  }

  function markProgress(event) {
    markersOf(event).forEach(function (key) {
      var step = document.querySelector('#job-progress [data-marker="' + key + '"]');
      if (!step || step.classList.contains("is-done")) return;
      step.classList.add("is-done");
      var slot = step.querySelector(".step-time");
      if (slot) {
        slot.textContent = "";
        slot.appendChild(timeEl(event.created_at));
        if (window.Steward) window.Steward.localize(slot);
      }
      var sr = step.querySelector(".sr-only");
      if (sr) sr.textContent = "done";
    });
  }

  function appendPartial(event) {
    var out = document.getElementById("partial-output");
    if (config.withholdsDraft) return;
    if (!out || !event.data || typeof event.data.text !== "string") return;
    // The server-rendered text already holds every chunk up to data-after.
    if (event.id <= Number(out.dataset.after || 0)) return;
    out.appendChild(document.createTextNode(event.data.text));
    out.dataset.after = String(event.id);
    var section = document.getElementById("job-partial");
    if (section) section.hidden = false;
  }

  function setBadge(status, label) {
    var badge = document.querySelector("[data-status-badge]");
    if (!badge || !status) return;
    badge.className = "badge badge-lg badge-" + status;
    badge.textContent = label || config.statusLabels[status] || status;
  }

  function apply(event) {
    if (seen.has(event.id)) return;
    if (event.id > lastId) lastId = event.id;
    if (event.kind === "partial_output") {
      seen.add(event.id);
      appendPartial(event);
      return;
    }
    // Shown by the next refresh, with everything else it changes, at most once per burst.
    waiting.push(event);
    scheduleRefresh(100);
  }

  // The refresh failed: show the waiting events from what they say.
  function applyHere(events) {
    if (ended) setState("Finished", "is-done");
    events.forEach(function (event) {
      if (seen.has(event.id)) return;
      seen.add(event.id);
      if (!hidden.has(event.kind)) addToTimeline(event);
      markProgress(event);
      if (event.to_status && event.to_status !== event.from_status) {
        // A rejected draft fails, and reads as what happened to it.
        setBadge(event.to_status, event.kind === "rejected" ? "Rejected" : null);
      }
    });
  }

  function noteTimeline() {
    document.querySelectorAll("#timeline [data-event-id]").forEach(function (li) {
      var id = Number(li.dataset.eventId);
      if (!seen.has(id)) {
        seen.add(id);
        li.classList.add("is-new");
      }
    });
  }

  function dialogOpen() {
    return !!document.querySelector("dialog[open]");
  }

  // Re-read the sections that depend on the job's state from the server, in place.
  function refresh() {
    if (dialogOpen()) return scheduleRefresh(1000);
    var shown = waiting;
    waiting = [];
    // The header tells the server this is the page reading itself, not the person opening it.
    var headers = { Accept: "text/html", "X-Steward-Refresh": "sections" };
    fetch(window.location.href, { credentials: "same-origin", headers: headers })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return applyHere(shown);
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (old) {
          var replacement = fresh.getElementById(old.id);
          if (replacement) old.replaceWith(document.importNode(replacement, true));
        });
        var freshPartial = fresh.getElementById("job-partial");
        var partial = document.getElementById("job-partial");
        if (freshPartial && partial) {
          var out = document.getElementById("partial-output");
          var freshOut = freshPartial.querySelector("#partial-output");
          partial.hidden = freshPartial.hidden;
          if (out && freshOut && Number(freshOut.dataset.after) > Number(out.dataset.after || 0)) {
            out.textContent = freshOut.textContent;
            out.dataset.after = freshOut.dataset.after;
          }
        }
        noteTimeline();
        if (ended) setState("Finished", "is-done");
        // Events newer than the render (written while the page was read) wait for the next.
        var late = shown.filter(function (event) { return !seen.has(event.id); });
        if (late.length) {
          waiting = late.concat(waiting);
          scheduleRefresh(250);
        }
        if (window.Steward) {
          window.Steward.localize(document);
          window.Steward.refreshUnread();
        }
      })
      .catch(function () { applyHere(shown); });
  }

  function scheduleRefresh(delay) {
    window.clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(refresh, delay || 250);
  }

  function connect() {
    disconnect();
    setState("Live", "is-live");
    source = new EventSource(config.eventsUrl + "?after=" + lastId);
    source.addEventListener("job_event", function (message) {
      try { apply(JSON.parse(message.data)); } catch (e) { /* a malformed event is skipped */ }
    });
    source.addEventListener("end", function () {
      disconnect();
      ended = true; // said once the refresh shows the finished job with everything else
      scheduleRefresh();
    });
    source.addEventListener("open", function () { setState("Live", "is-live"); });
    source.onerror = function () {
      if (!source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The server answered with an error: try again ourselves, from the last id we have.
        setState("Reconnecting…", "is-wait");
        source = null;
        retryTimer = window.setTimeout(connect, 3000);
      } else {
        setState("Reconnecting…", "is-wait"); // the browser retries with Last-Event-ID
      }
    };
  }

  function disconnect() {
    window.clearTimeout(retryTimer);
    if (source) {
      source.close();
      source = null;
    }
    setState("Paused", "");
  }

  window.stewardLive = {
    connect: connect,
    disconnect: disconnect,
    lastEventId: function () { return lastId; },
    isConnected: function () { return !!source; },
  };
  connect();
})();
