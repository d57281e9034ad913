"""End to end through a real ``qcluster`` process and the fake OpenAI server over HTTP,
including SIGKILLs of the whole cluster mid-poll and mid-stream."""

import os
import signal

import pytest
from django.conf import settings
from django.utils import timezone

from jobs import services
from jobs.models import Job, Status
from tests.factories import WorkspaceFactory, member_of
from tests.processes import group_members, start_cluster_with_pumps, steward_env, wait_for

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("empty_task_queue"),
]


@pytest.fixture
def cluster_env(fake):
    return steward_env(
        fake.base_url,
        # the same queue name as this process, so tasks enqueued here reach the cluster
        Q_CLUSTER_NAME=settings.Q_CLUSTER["name"],
        Q_WORKERS=3,
        PUMP_RUN_SECONDS=20,
        PUMP_STALE_SECONDS=3,
        POLL_LEASE_SECONDS=3,
        POLL_MIN_INTERVAL=0.3,
        FAKE_OPENAI_DURATION=1,
    )


@pytest.fixture
def start_cluster(cluster_env):
    """Start clusters (and their pump); every one is stopped when the test ends, pass or fail."""
    started = []

    def start(**settings_overrides):
        env = {**cluster_env, **{key: str(value) for key, value in settings_overrides.items()}}
        cluster = start_cluster_with_pumps(env)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        cluster.stop()


def submit_many(count, job_type="summarize_document", directive=""):
    workspace = WorkspaceFactory()
    user = member_of(workspace)
    inputs = {
        "summarize_document": {"title": "Report", "document": f"Numbers. {directive}"},
        "draft_support_reply": {
            "customer_name": "Ada",
            "tone": "formal",
            "message": f"Hello. {directive}",
        },
    }[job_type]
    return [
        services.submit_job(workspace=workspace, submitter=user, job_type=job_type, input=inputs)
        for _ in range(count)
    ]


def statuses(jobs):
    return list(Job.objects.filter(pk__in=[j.pk for j in jobs]).values_list("status", flat=True))


def test_jobs_complete_through_a_real_cluster(start_cluster):
    jobs = submit_many(5)
    with start_cluster():
        wait_for(
            lambda: set(statuses(jobs)) == {Status.COMPLETED},
            timeout=60,
            message="all jobs completed",
        )
    for job in Job.objects.filter(pk__in=[j.pk for j in jobs]):
        assert job.artifacts.filter(kind="text", is_stale=False).count() == 1
        assert job.attempts.count() == 1


def test_sigkill_mid_poll_loses_no_job(start_cluster):
    jobs = submit_many(12, directive="[fake:duration=8]")
    cluster = start_cluster()
    wait_for(
        lambda: Job.objects.filter(attempts__provider_response_id__isnull=False).count() >= 6,
        timeout=30,
        message="jobs in flight",
    )
    cluster.kill()
    wait_for(lambda: not group_members(cluster.process.pid), timeout=10, message="no process left")
    with start_cluster():
        wait_for(
            lambda: set(statuses(jobs)) == {Status.COMPLETED},
            timeout=90,
            message="every job completed after the kill",
        )
    for job in Job.objects.filter(pk__in=[j.pk for j in jobs]):
        # the dispatch lease may have been lost mid-create, but only one result is released
        assert job.artifacts.filter(kind="text", is_stale=False).count() == 1
        assert job.events.filter(kind="completed").count() == 1


def test_a_cluster_wedged_by_a_killed_idle_worker_is_replaced_and_runs_new_work(start_cluster):
    """django-q2's idle worker holds the task queue's read lock while it waits for a task; if
    it is SIGKILLed then, every other worker waits for that lock forever and the cluster runs
    nothing again (jobs.execution.cluster). Killing all the workers is sure to kill the lock's
    holder.
    run_workers must notice, start a new cluster, and a job submitted afterwards complete."""
    cluster = start_cluster(Q_WORKERS=2, WORKER_WEDGE_SECONDS=3)
    pids = wait_for(lambda: len(cluster.worker_pids()) == 2 and cluster.worker_pids(), timeout=30)
    # The pump task runs in one worker and has beaten twice; the other worker went back to
    # waiting for a task (holding the queue's read lock) the moment the pump task left it.
    first_beat = wait_for(pump_heartbeat, timeout=30, message="the pump to beat")
    wait_for(lambda: (pump_heartbeat() or first_beat) > first_beat, timeout=30, message="a beat")
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    [job] = submit_many(1)
    wait_for(
        lambda: statuses([job]) == [Status.COMPLETED],
        timeout=120,
        message="the job to complete after the workers were killed",
    )
    assert "the task cluster is wedged" in cluster.log_since_start()


def pump_heartbeat():
    from jobs.models import PumpSlot

    slot = PumpSlot.objects.filter(slot=0).exclude(owner="").first()
    return slot.heartbeat_at if slot else None


def test_stream_resumes_after_the_worker_is_killed_mid_stream(start_cluster):
    job, cluster = a_stream_under_way(start_cluster, seconds=8)
    cluster.kill()
    assert_the_next_cluster_resumes_the_stream(job, start_cluster)


def a_stream_under_way(start_cluster, *, seconds):
    """A stream-lane job of ``seconds`` at the fake, and the cluster streaming it, once two
    batches of its text are saved."""
    [job] = submit_many(1, "draft_support_reply", f"[fake:duration={seconds};chunk_chars=2]")
    cluster = start_cluster()
    wait_for(
        lambda: job.events.filter(kind="partial_output").count() >= 2,
        timeout=30,
        message="streamed text",
    )
    return job, cluster


def streamed_text(job):
    return "".join(e.data["text"] for e in job.events.filter(kind="partial_output").order_by("id"))


def assert_the_next_cluster_resumes_the_stream(job, start_cluster):
    """The text saved so far is kept, and a new cluster finishes the answer from the cursor:
    nothing lost, nothing repeated, and the attempt that was streaming is the one that
    finishes (no new attempt). Attempts before it are not this test's business: a stream task
    that waited in a loaded machine's queue past the lease (3 s here) is superseded by design."""
    before = streamed_text(job)
    assert before
    streaming = job.attempts.get(provider_response_id__isnull=False, state="in_flight")
    attempts_before = job.attempts.count()
    with start_cluster():
        wait_for(
            lambda: Job.objects.get(pk=job.pk).status == Status.NEEDS_REVIEW,
            timeout=60,
            message="the stream finished after resuming",
        )
    job = Job.objects.get(pk=job.pk)
    assert streamed_text(job).startswith(before)
    assert streamed_text(job) == job.artifacts.get(kind="text").text
    assert job.attempts.count() == attempts_before
    assert job.attempts.get(pk=streaming.pk).state == "succeeded"


def test_cancel_mid_run_reaches_the_provider_through_the_cluster(start_cluster, fake):
    [job] = submit_many(1, directive="[fake:duration=60;queued_for=0.5]")
    with start_cluster():
        wait_for(
            lambda: Job.objects.get(pk=job.pk).status == Status.RUNNING,
            timeout=30,
            message="the job running",
        )
        services.cancel_job(job=Job.objects.get(pk=job.pk), actor=job.submitter)
        response_id = job.attempts.get().provider_response_id
        client = fake.client()
        wait_for(
            lambda: client.responses.retrieve(response_id).status == "cancelled",
            timeout=30,
            message="the provider response cancelled by the worker",
        )
    assert Job.objects.get(pk=job.pk).status == Status.CANCELED


def test_deadline_sweep_in_the_cluster_expires_a_job(start_cluster, fake):
    [job] = submit_many(1, directive="[fake:duration=60;queued_for=0.5]")
    with start_cluster():
        wait_for(
            lambda: job.attempts.filter(state="in_flight").exists(),
            timeout=30,
            message="the job in flight",
        )
        Job.objects.filter(pk=job.pk).update(expires_at=timezone.now())
        wait_for(
            lambda: Job.objects.get(pk=job.pk).status == Status.EXPIRED,
            timeout=30,
            message="the sweep expiring the job",
        )
        response_id = job.attempts.get().provider_response_id
        client = fake.client()
        wait_for(
            lambda: client.responses.retrieve(response_id).status == "cancelled",
            timeout=30,
            message="the expired job cancelled at the provider",
        )


def test_sigterm_to_the_process_group_stops_run_workers_and_every_worker(start_cluster):
    """Process managers stop a service with SIGTERM to its whole process group (systemd's
    default, ``docker stop`` of a container whose init is run_workers): run_workers must exit
    with 0 and leave no worker behind, not hang until a SIGKILL."""
    cluster = start_cluster()
    jobs = submit_many(2)
    # tasks went through the pusher and results through the monitor (threads of run_workers)
    wait_for(lambda: set(statuses(jobs)) == {Status.COMPLETED}, timeout=60, message="jobs done")
    assert len(cluster.worker_pids()) == 3
    os.killpg(cluster.process.pid, signal.SIGTERM)
    assert cluster.process.wait(timeout=30) == 0
    assert "Traceback" not in cluster.log_since_start()  # the monitor thread read to its STOP
    wait_for(lambda: not group_members(cluster.process.pid), timeout=10, message="no process left")


def test_sigterm_to_run_workers_ends_the_pump_turn_and_frees_its_slot(start_cluster):
    """``docker stop`` and ``kill PID`` signal run_workers alone. The pump, a task that runs
    for PUMP_RUN_SECONDS (20 here), must not hold the stop up: it ends its turn and frees the
    slot, so the next cluster's pump takes over at once instead of after PUMP_STALE_SECONDS."""
    from jobs.models import PumpSlot

    cluster = start_cluster()
    wait_for(
        lambda: PumpSlot.objects.filter(slot=0).exclude(owner="").exists(),
        timeout=30,
        message="a pump to hold slot 0",
    )
    os.kill(cluster.process.pid, signal.SIGTERM)
    assert cluster.process.wait(timeout=15) == 0
    assert PumpSlot.objects.get(slot=0).owner == ""


def test_sigterm_to_run_workers_hands_a_live_stream_back_and_the_next_cluster_resumes_it(
    start_cluster,
):
    """A stream task holds its worker for the whole answer. Stopping run_workers saves what
    arrived, hands the job back, and exits in seconds; the next cluster resumes from the
    cursor without losing or repeating text."""
    job, cluster = a_stream_under_way(start_cluster, seconds=10)
    os.kill(cluster.process.pid, signal.SIGTERM)
    assert cluster.process.wait(timeout=15) == 0
    assert Job.objects.get(pk=job.pk).status == Status.RUNNING
    assert_the_next_cluster_resumes_the_stream(job, start_cluster)
