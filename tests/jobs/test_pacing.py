"""When the poller looks at an in-flight job: the backoff and the first look learned per job type
(jobs/execution/pacing.py), against the fake OpenAI server over real HTTP."""

import asyncio
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import execution, services
from jobs.event_stream import stream_job_events
from jobs.execution import pacing
from jobs.models import TERMINAL, Attempt, Job, Status
from tests.factories import JobFactory, WorkspaceFactory
from tests.jobs.test_provider_lane import finished_at_provider, pump_until, reload, submit

pytestmark = pytest.mark.django_db(transaction=True)


def past_runs(seconds, *, job_type="summarize_document", finished_ago=timedelta(minutes=5)):
    """Completed attempts of ``job_type`` whose provider worked ``seconds`` each."""
    workspace = WorkspaceFactory()
    finished = timezone.now() - finished_ago
    for run in seconds:
        job = JobFactory(workspace=workspace, job_type=job_type, status=Status.COMPLETED)
        Attempt.objects.create(
            job=job,
            number=1,
            state=Attempt.State.SUCCEEDED,
            provider_seconds=run,
            finished_at=finished,
        )


def seconds_until_next_look(job):
    return (reload(job).next_poll_at - timezone.now()).total_seconds()


def test_a_completed_attempt_records_how_long_the_provider_worked(fake):
    job = submit(directive="[fake:duration=2]")
    execution.dispatch_job(job.pk)
    pump_until(lambda: reload(job).status == Status.COMPLETED)
    worked = Attempt.objects.get(job=job).provider_seconds
    # the provider's created_at / completed_at are whole seconds
    assert worked is not None and 1 <= worked <= 3


def test_the_first_look_waits_for_the_job_types_shortest_recent_runs(fake):
    past_runs(range(40, 90))  # 50 runs of 40-89 s: the 2nd percentile is 40 s
    job = submit(directive="[fake:duration=60;queued_for=0]")
    execution.dispatch_job(job.pk)
    assert 0.9 * 40 - 1 <= seconds_until_next_look(job) <= 0.9 * 40


def test_a_job_type_without_enough_history_is_looked_at_early(fake, settings):
    past_runs(range(40, 40 + settings.POLL_LEARN_MIN_SAMPLES - 1))
    past_runs(range(40, 90), job_type="draft_support_reply")  # another type's runs don't count
    past_runs(range(40, 90), finished_ago=timedelta(days=8))  # nor last week's
    job = submit(directive="[fake:duration=60]")
    execution.dispatch_job(job.pk)
    assert seconds_until_next_look(job) <= settings.POLL_MIN_INTERVAL


def test_a_job_type_whose_runs_reach_down_to_seconds_keeps_its_early_looks(fake):
    past_runs([1, 2] + list(range(40, 88)))  # the 2nd percentile of these 50 is 1 s
    job = submit(directive="[fake:duration=60]")
    execution.dispatch_job(job.pk)
    assert seconds_until_next_look(job) <= 0.9 * 1


def test_a_look_before_the_learned_first_look_waits_for_it_not_for_the_backoff(fake):
    past_runs(range(40, 90))
    job = submit(directive="[fake:duration=60;queued_for=0]")
    execution.dispatch_job(job.pk)
    started = Attempt.objects.get(job=job).started_at
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())  # e.g. a stray wake-up
    execution.run_pump(seconds=0.3, owner="test-pump")
    due = reload(job).next_poll_at
    assert reload(job).status in (Status.QUEUED, Status.RUNNING)
    assert (due - started).total_seconds() == pytest.approx(0.9 * 40, abs=1)


def test_past_the_first_look_the_backoff_is_a_tenth_of_the_age(settings):
    settings.OPENAI_WEBHOOKS_ENABLED = False
    assert pacing.next_look(100, first_look=36) == pytest.approx(9.5, abs=0.5)
    assert pacing.next_look(10, first_look=36) == 26


def test_with_webhooks_the_safety_poll_ignores_learned_run_times(fake, settings):
    past_runs(range(40, 90))
    settings.OPENAI_WEBHOOKS_ENABLED = True
    assert pacing.first_look("summarize_document") == 0
    assert pacing.next_look(0) >= 0.9 * settings.WEBHOOK_SAFETY_POLL_SECONDS


# --- when the model starts: the job is running as soon as Steward can know it -------------


def _story(job):
    return [
        (e.kind, e.from_status, e.to_status)
        for e in reload(job).events.order_by("id")
        if e.kind in ("dispatched", "running")
    ]


@pytest.mark.parametrize("webhooks", [False, True])
def test_a_job_the_model_starts_on_creation_is_running_from_its_dispatch(fake, settings, webhooks):
    settings.OPENAI_WEBHOOKS_ENABLED = webhooks
    job = submit(directive="[fake:duration=60;queued_for=0]")
    execution.dispatch_job(job.pk)
    assert reload(job).status == Status.RUNNING
    assert _story(job) == [
        ("dispatched", Status.QUEUED, Status.QUEUED),
        ("running", Status.QUEUED, Status.RUNNING),
    ]


def watch_until_it_asks_for_a_look(job):
    """Open the job's event stream (as its page does) and read it until it has asked for a
    look once: with ``heartbeat=0`` every turn after the catch-up ends with a keep-alive."""

    async def watch():
        stream = stream_job_events(job.pk, 0, poll=0, heartbeat=0)
        try:
            async for chunk in stream:
                if chunk.startswith(": keep-alive"):
                    return
        finally:
            await stream.aclose()

    asyncio.run(watch())


@pytest.mark.parametrize("webhooks", [False, True])
def test_a_watched_job_the_provider_queues_is_looked_at_now_and_runs_once_the_model_starts(
    fake, settings, webhooks
):
    """No webhook says the model started, and a learned first look or the webhook safety poll
    would leave an open page saying "queued" for minutes: its open stream asks for a look."""
    settings.OPENAI_WEBHOOKS_ENABLED = webhooks
    past_runs(range(40, 90))  # a learned first look of 36 s
    job = submit(directive="[fake:duration=60;queued_for=0.5]")
    execution.dispatch_job(job.pk)
    assert reload(job).status == Status.QUEUED
    assert seconds_until_next_look(job) > 30  # nobody watches yet: the usual pacing
    finished_at_provider(fake, job, status="in_progress")  # the model has started
    watch_until_it_asks_for_a_look(job)
    assert seconds_until_next_look(job) <= 0
    execution.run_pump(seconds=0.3, owner="test-pump")
    assert reload(job).status == Status.RUNNING
    assert _story(job)[-1] == ("running", Status.QUEUED, Status.RUNNING)


def test_a_job_nobody_watches_gets_no_early_looks_with_webhooks_on(fake, settings):
    """The P2 budget with webhooks (about one retrieve a job): without a watcher a job the
    provider keeps queued is looked at only by the safety poll, and says what is known."""
    settings.OPENAI_WEBHOOKS_ENABLED = True
    job = submit(directive="[fake:duration=3600;queued_for=3600]")
    execution.dispatch_job(job.pk)
    assert seconds_until_next_look(job) > 0.8 * settings.WEBHOOK_SAFETY_POLL_SECONDS
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())  # the safety poll
    execution.process_claimed(execution.claim_due("test-pump", job_ids=[job.pk]), "test-pump")
    assert Attempt.objects.get(job=job).polls == 1
    assert reload(job).status == Status.QUEUED  # true: the provider still holds it
    assert seconds_until_next_look(job) > 0.8 * settings.WEBHOOK_SAFETY_POLL_SECONDS


def test_watching_a_finished_or_unsent_job_asks_for_no_look(fake):
    waiting = submit()  # accepted, not sent to the provider yet
    assert not services.look_soon(waiting.pk)
    done = submit(directive="[fake:duration=0;queued_for=0]")
    execution.dispatch_job(done.pk)
    pump_until(lambda: reload(done).status in TERMINAL)
    assert not services.look_soon(done.pk)
