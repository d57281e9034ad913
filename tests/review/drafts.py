"""Jobs waiting for review, made the way production makes them: submit, attempt, finish."""

from decimal import Decimal

from jobs import services
from jobs.results import AttemptOutcome, Usage

INPUTS = {
    "draft_support_reply": {
        "customer_name": "Dana",
        "tone": "friendly",
        "message": "My order arrived broken.",
    },
    "tag_ticket": {"subject": "Login fails", "body": "I cannot log in since Tuesday."},
    "summarize_document": {"title": "Board minutes", "document": "We met.", "sensitive": True},
    "issue_refund": {
        "order_reference": "A-1001",
        "customer_email": "dana@example.test",
        "amount": "25.00",
        "reason": "Arrived broken.",
    },
}
MODEL_TEXT = "Hi Dana,\n\nSorry your order arrived broken. We will send a new one today.\n"


def finish(job, text=MODEL_TEXT, cost="0.0012"):
    """Run one attempt of ``job`` to a completed model result (no provider needed)."""
    notes = services.reviewer_notes_for(job)
    from jobs.job_types import get_job_type

    instructions = get_job_type(job.job_type).render_instructions(job.input, reviewer_notes=notes)
    attempt = services.begin_attempt(job=job, instructions=instructions)
    attempt = services.record_dispatch(
        attempt=attempt, response_id=f"resp_{job.pk.hex}_{attempt.number}", provider_status="queued"
    )
    outcome = AttemptOutcome(
        status="completed",
        text=text,
        usage=Usage(input_tokens=120, output_tokens=80, cost=Decimal(cost)),
        provider_status="completed",
    )
    return services.finish_attempt(job=job, attempt=attempt, outcome=outcome)


def make_draft(*, workspace, submitter, job_type="draft_support_reply", text=MODEL_TEXT, **kw):
    job = services.submit_job(
        workspace=workspace,
        submitter=submitter,
        job_type=job_type,
        input=kw.pop("input", None) or INPUTS[job_type],
        **kw,
    )
    return finish(job, text=text)
