"""A fake OpenAI Responses API for Steward's tests and benchmarks (no Django anywhere here).

Steward's provider layer must survive background mode's real behaviour (slow queues, failures,
partial output, dropped streams, 429s, duplicated webhooks) without ever calling OpenAI. This
package imitates that behaviour faithfully enough for the official ``openai`` SDK to be pointed
at it, and every body it sends validates against the reference OpenAPI spec.

Run
---
``python -m fake_openai --port 8765 [--host 127.0.0.1] [--seed S] [--retention-seconds 600]
[--webhook-url URL --webhook-secret whsec_…] [--log-level warning]``

One process, state in memory, access log off. ``--port 0`` picks a free port; once serving, the
process prints ``FAKE_OPENAI_READY http://host:port`` on stdout. Point the SDK at it with
``OpenAI(api_key="anything", base_url="http://127.0.0.1:8765/v1")``.

Routes (``/v1``)
----------------
- ``POST /v1/responses``: ``background=true`` answers at once (``queued``); ``stream=true``
  answers with SSE (background or not); otherwise the call returns the final Response after the
  simulated duration. Needs ``model`` and ``input`` (400 otherwise); ``background`` with
  ``store=false`` is a 400; unknown fields (``background_options`` …) are ignored. ``tools``
  and ``previous_response_id`` drive tool runs (below).
- ``GET /v1/responses/{id}``: the Response, status computed from the clock. With
  ``?stream=true[&starting_after=N][&include_obfuscation=false]``: SSE replay of the events after
  N, then the live tail until terminal (400 if the response was not created with
  ``stream=true``).
- ``POST /v1/responses/{id}/cancel``: background only (400 otherwise); a terminal response comes
  back unchanged, so repeated cancels return the same object. A cancel ends live streams
  (there is no ``response.cancelled`` stream event).
- ``DELETE /v1/responses/{id}``: ``{"id", "object": "response.deleted", "deleted": true}``.
- Anything else under ``/v1``: 404 ``unknown_url``. Every ``/v1`` reply carries ``x-request-id``,
  ``openai-processing-ms``, ``openai-version`` and ``x-ratelimit-*``.

Status runs ``queued`` → ``in_progress`` → ``completed`` | ``failed`` | ``incomplete`` (or
``cancelled``), computed lazily from timestamps: no task per response, so tens of thousands can be
in flight. ``usage`` is absent until terminal (absent for cancelled); ``completed_at`` is set only
when completed. The output text is a deterministic summary-ish transform of the input plus a
hash; about four characters per token. When the request's ``max_output_tokens`` is below the
planned output (and no ``fake_outcome`` is given), the response ends ``incomplete``. Models
named ``o…``/``gpt-5…`` report reasoning tokens. A response 404s ``retention_seconds`` after it
became terminal.

Per-response scenarios: request ``metadata`` (string values)
------------------------------------------------------------
- ``fake_duration``: seconds from create to terminal (default ``0.5``).
- ``fake_queued_for``: seconds spent ``queued`` (default 20 % of the duration for background,
  0 otherwise; capped at the duration). ``fake_queued_for=fake_duration=3600``: stuck queued.
- ``fake_outcome``: ``completed`` | ``failed:<code>`` (any spec ``ResponseErrorCode``, e.g.
  ``failed:server_error``, ``failed:invalid_prompt``) | ``incomplete:max_output_tokens`` |
  ``incomplete:content_filter`` (partial output: 60 % / 40 % of the text).
- ``fake_output_chars``: exact length of the full output text (default input/3, 120…1200).
- ``fake_chunk_chars``: characters per ``response.output_text.delta`` (default 24).
- ``fake_create_errors``: comma list answered to the first create calls with the same
  ``metadata["job_id"]`` (or the same ``input`` when there is none), e.g. ``429,429,500``. Items:
  an HTTP status 400–599, ``insufficient_quota`` (429 without Retry-After), ``reset`` (hang up
  without a reply) or ``malformed`` (200 with broken JSON).
- ``fake_retrieve_errors``: the same, for the first retrieves of this response.
- ``fake_retry_after``: Retry-After seconds for those 429s (above 120 makes the SDK give up).
- ``fake_stream_drop_after``: the first stream connection of this response is reset after N
  events (the SDK raises ``APIConnectionError``; resume with ``starting_after``).
- ``fake_cached_tokens``, ``fake_reasoning_tokens``: override those usage figures.
- ``fake_tool_plan``: the function calls of a tool run, steps separated by ``;`` or ``|``, parallel
  calls in one step by ``,`` (``lookup_order;add_note,email_customer``); ``none``: answer at
  once. Default: one step per ``function`` tool, in the order given. A name not among the
  request's function tools (or with no tools at all) is a 400 on ``metadata``.
- ``fake_reject_continuation``: ``background`` refuses a create with ``previous_response_id``
  and ``background=true`` whose input carries a ``function_call_output`` (or
  ``mcp_approval_response``), as some providers do: 400 ``No tool call found for function call
  output with call_id <call_id>.`` (param ``input``). The client has to replay the run as
  ``input`` instead (see below).

Tool runs (``tools``, ``previous_response_id``; see ``tools.py``)
------------------------------------------------------------------
Each step is its own response (same timing, queueing, outcome, webhooks and usage rules; the
metadata of *each* create is read). The fake reads the run from its conversation: the stored
one of ``previous_response_id`` (400 ``Previous response with id '<id>' not found.``, param
``previous_response_id``, if unknown or expired) plus this ``input``; or, without it, the whole
run replayed as ``input`` (messages, ``function_call`` items, ``function_call_output`` items,
MCP items). Both give the same next step. Every ``function_call`` needs its output, or 400
``No tool output found for function call <call_id>.`` (param ``input``); an output without its
call is 400 ``No tool call found for function call output with call_id <call_id>.``. In order:

1. ``mcp`` tool (the first one; ``require_approval`` other than ``never``, the API's default
   ``always``): the first response's output is one ``mcp_approval_request`` (``name``: first of
   ``allowed_tools`` or ``run``; ``arguments``: ``{"input": <prompt, 80 chars>}``). The next
   create must carry the ``mcp_approval_response`` (400 otherwise); approved: that response
   starts with an ``mcp_call`` (``status`` completed, ``output`` ``"<name> finished: ok
   (<hex>)"``); denied: no call. With ``never``, the first response makes the ``mcp_call``.
2. Function steps: the step is how many plan steps already have their calls in the
   conversation. A step's output is one ``function_call`` per call (``id`` ``fc_…``,
   ``call_id`` ``call_…``, both derived from the response id; ``status`` completed) and no
   message. Arguments: each top-level property of ``parameters`` (nested objects: their
   required properties; all with ``strict``) takes the value the prompt (instructions +
   messages) states as ``<property>: <value>`` or ``<property> = <value>`` (case-insensitive,
   ``_`` = space; to the end of the line, a ``;``, or a comma opening the next ``key:``),
   converted to its type; else enum → first, string → ``<property>-<6 hex>`` (of the messages)
   (``format: email`` → ``customer-<hex>@example.com``), integer/number → 1, boolean → false,
   array → [].
3. The answer: the usual text for the messages (``fake_output_chars`` sizes this part), then
   with a ``web_search``/``web_search_preview`` tool a blank line and ``Sources: <title>;
   <title>.`` (output starts with a completed ``web_search_call``, action ``search`` with a
   query of the messages' first 8 words; the text part carries two ``url_citation``
   annotations on the titles, example.com and example.org), then, if any tool ran, a blank
   line, ``Tool results:`` and one line per tool in conversation order: ``- <name>:
   <output>`` (whitespace collapsed, cut to 200 characters), ``- <server_label>.<name>: <mcp
   output>`` or ``- <server_label>.<name>: declined by the user (<reason or "no reason
   given">)``.

``tool_choice: "none"`` disables all of this. Streams carry ``response.output_item.added``/
``.done`` per item, ``response.function_call_arguments.delta``/``.done``,
``response.web_search_call.in_progress``/``.searching``/``.completed``,
``response.mcp_call.in_progress``, ``response.mcp_call_arguments.done``,
``response.mcp_call.completed`` and ``response.output_text.annotation.added``. A tool step
that ends ``incomplete`` keeps its call items with status ``incomplete``. Plain creates keep
no conversation, so ``previous_response_id`` only continues tool runs meaningfully.

Control API (``/_fake``, JSON)
------------------------------
- ``POST /_fake/config`` (partial update; ``GET`` reads it). Fields:
  ``faults`` ({name: probability}, names ``429``, ``insufficient_quota``, ``500``, ``503``,
  ``slow``, ``reset``, ``malformed``; rates sum to ≤ 1; one draw per /v1 request; ``reset``
  hangs up before the request is handled, ``malformed`` garbles the reply of a request that
  *was* handled, e.g. a create that really started a response),
  ``fault_routes`` (subset of ``create``, ``retrieve``, ``cancel``, ``delete``),
  ``slow_seconds`` (2), ``retry_after`` (1; seconds on injected 429s), ``should_retry``
  (null | true | false → ``x-should-retry`` on injected errors), ``retention_seconds`` (600),
  ``seed`` (reseeds ids and fault draws: same seed + same requests = same run),
  ``webhook_url``, ``webhook_secret`` (``whsec_<base64>``), ``webhook_delay`` (s),
  ``webhook_duplicate_rate``, ``webhook_drop_rate``, ``webhook_bad_signature`` and
  ``webhook_stale_timestamp`` (rates; ``true`` = always), ``webhook_max_attempts`` (6),
  ``webhook_retry_base`` (0.5 s, doubled per attempt), ``webhook_timeout`` (5 s).
- ``POST /_fake/reset``: forget responses, counters, logs, deliveries; restore the startup config
  (CLI flags), then apply any config in the body.
- ``GET /_fake/stats[?responses=0]``: request counts per route (``create``, ``retrieve``,
  ``retrieve_stream``, ``cancel``, ``delete``), per HTTP status, per response id and per
  ``metadata["job_id"]`` (``jobs``: creates, failed creates included, and retrieves of its
  responses).
- ``GET /_fake/log[?limit=N]``: recent /v1 requests (time, method, path, route, status,
  request_id, response_id, job_id, idempotency_key, retry_count from
  ``x-stainless-retry-count``, fault).
- ``GET /_fake/webhooks``: delivery attempts (webhook_id, event_id, type, response_id, attempt,
  duplicate, outcome, status). ``GET /_fake/health``.

Webhooks: on each terminal state of a background response, ``POST webhook_url`` with
``{"id": "evt_…", "object": "event", "type": "response.<status>", "created_at": …, "data":
{"id": "resp_…"}}`` and Standard Webhooks headers (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256>``) that ``client.webhooks.unwrap`` accepts. Non-2xx
or connection errors are retried with backoff under the same ``webhook-id``.

Helper
------
``fake_openai.testing.FakeServer`` runs the server in a subprocess (see that module).
"""
