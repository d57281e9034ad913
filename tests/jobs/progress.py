"""Drive a job through the provider lane's services, as the dispatcher and poller would."""

from decimal import Decimal

from jobs import services
from jobs.models import FailureKind
from jobs.results import AttemptOutcome, Usage


def start(job):
    """Open an attempt, hand it to the model, and see it running. Returns the attempt."""
    attempt = services.begin_attempt(job=job, instructions="…")
    attempt = services.record_dispatch(
        attempt=attempt, response_id=f"resp_{job.pk.hex}_{attempt.number}", provider_status="queued"
    )
    services.mark_running(job=job)
    return attempt


def stream(job, *chunks):
    for n, text in enumerate(chunks, start=1):
        services.record_event(
            job, "partial_output", actor="system:stream", data={"seq": n, "text": text}
        )


def finish(job, attempt, text="**Done.**", cost="0.00042"):
    usage = Usage(input_tokens=120, output_tokens=80, cost=Decimal(cost), price_version="t")
    return services.finish_attempt(
        job=job,
        attempt=attempt,
        outcome=AttemptOutcome(status="completed", text=text, usage=usage),
    )


def fail(job, attempt, *, kind=FailureKind.PROVIDER, retryable=False, message="It broke."):
    return services.finish_attempt(
        job=job,
        attempt=attempt,
        outcome=AttemptOutcome(
            status="failed", failure_kind=kind, retryable=retryable, error_message=message
        ),
    )
