"""R3: a thousand cancel-vs-complete races and a few hundred approve-vs-approve races on
PostgreSQL, each pair of calls released together by a barrier from two threads with their
own database connections.

What a user relies on: a job has exactly one outcome. A cancel either wins (and a result that
still arrives is kept as a stale artifact, never released) or is refused with a message; an
approval is decided once and its external effect runs once; the audit trail tells the same
story as the job's status.
"""

import random
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Role
from demo.models import RefundLedgerEntry
from jobs import execution, services
from jobs.errors import JobError, TransitionNotAllowed
from jobs.execution import provider
from jobs.execution.provider.client import poll_loop_and_client
from jobs.models import TERMINAL, Artifact, Attempt, Job, Status
from review import services as review
from review.errors import ReviewError
from review.models import Decision, ReleaseRecord
from tests.factories import WorkspaceFactory, member_of
from tests.processes import wait_for
from tests.review.drafts import INPUTS, finish

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.pg,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("empty_task_queue"),
]

CANCEL_RACES = 1000
APPROVE_RACES = 300
LANES = 4  # racing pairs at once: eight threads on a two-core machine
# The cancel side waits up to this long after the barrier, so that across many races it lands
# before, during and after the poller's retrieve + apply (a few milliseconds on this machine).
CANCEL_STAGGER = 0.03


# --- racing machinery ------------------------------------------------------------------------


class Lane:
    """Two long-lived threads that race one pair of calls per item, released together by a
    barrier. ``left(item)`` and ``right(item)`` do their setup and return the call to race.
    Each side's result (return value or exception) is kept per item."""

    def __init__(self, left, right, cleanup=()):
        self.sides = (left, right)
        self.cleanup = cleanup
        self.barrier = threading.Barrier(2, timeout=60)

    def run(self, items):
        results = {item: [None, None] for item in items}
        threads = [threading.Thread(target=self._side, args=(i, items, results)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        return results

    def _side(self, index, items, results):
        try:
            for item in items:
                try:
                    call = self.sides[index](item)
                except Exception as error:  # setup failed: still meet the other side
                    call, results[item][index] = None, error
                self.barrier.wait()
                if call is None:
                    continue
                try:
                    results[item][index] = call()
                except Exception as error:  # the loser's refusal is the point of the test
                    results[item][index] = error
        finally:
            for close in self.cleanup:
                close()
            connection.close()


def race_all(items, left, right, cleanup=()):
    """Race every item's pair of calls, ``LANES`` pairs at a time; ``{item: [left, right]}``."""
    chunks = [items[i::LANES] for i in range(LANES)]
    with ThreadPoolExecutor(LANES) as pool:
        parts = pool.map(lambda chunk: Lane(left, right, cleanup).run(chunk), chunks)
        return {item: pair for part in parts for item, pair in part.items()}


def describe(error):
    return "".join(traceback.format_exception(error)) if isinstance(error, Exception) else error


def close_poll_client():
    """The poller keeps one event loop and async client per thread; close this thread's."""
    loop, client = poll_loop_and_client()
    loop.run_until_complete(client.close())
    loop.close()


def status_story(job):
    """The job's status changes as its events tell them, oldest first."""
    return [
        (e.from_status, e.to_status)
        for e in job.events.order_by("id")
        if e.from_status and e.from_status != e.to_status
    ]


def terminal_moves(job):
    """How many events moved the job into a finished status."""
    return sum(1 for _, to_status in status_story(job) if to_status in TERMINAL)


def assert_story_matches(job):
    """Events chain from one status to the next and end in the job's current status."""
    story = status_story(job)
    for (_, before), (after, _) in zip(story, story[1:], strict=False):
        assert before == after, (job.pk, story)
    if story:
        assert story[-1][1] == job.status, (job.pk, story, job.status)


# --- cancel vs complete ----------------------------------------------------------------------


def _running_jobs(count):
    """``count`` jobs whose single attempt is in flight at the fake and already finished there:
    most are running, some still queued (the provider finished before any poll saw it start),
    and a fifth are sensitive documents, which go to review instead of completing."""
    workspace = WorkspaceFactory()
    user = member_of(workspace)
    now = timezone.now()
    jobs = [
        Job(
            workspace=workspace,
            submitter=user,
            job_type="summarize_document",
            authority_class="read_only",
            lane="background",
            model="gpt-5-mini",
            input={"title": f"R3 {n}", "document": f"Race {n}.", "sensitive": n % 5 == 0},
            input_summary=f"R3 {n}",
            is_sensitive=n % 5 == 0,
            status=Status.QUEUED if n % 7 == 0 else Status.RUNNING,
            expires_at=now + timedelta(hours=1),
            attempt_count=1,
            attempt_limit=3,
            next_poll_at=now,
            started_at=None if n % 7 == 0 else now,
        )
        for n in range(count)
    ]
    Job.objects.bulk_create(jobs)

    def dispatch(job):
        instructions = f"Summarize R3 document {job.input['title']}. [fake:duration=0]"
        accepted = provider.create_response(
            job_id=job.pk, attempt_number=1, model=job.model, instructions=instructions
        )
        return Attempt(
            job=job,
            number=1,
            state=Attempt.State.IN_FLIGHT,
            instructions=instructions,
            model=job.model,
            provider_response_id=accepted.response_id,
            provider_status=accepted.provider_status,
        )

    with ThreadPoolExecutor(4) as pool:
        Attempt.objects.bulk_create(pool.map(dispatch, jobs))
    return user, jobs


def test_cancel_racing_completion_has_exactly_one_outcome(fake, chaos_env, clusters, chaos_report):
    user, jobs = _running_jobs(CANCEL_RACES)
    owner = execution.worker_name("r3-poller")
    rng = random.Random("r3-cancel")
    delays = {job.pk: rng.uniform(0, CANCEL_STAGGER) for job in jobs}

    def cancel(job_id):
        def call():
            time.sleep(delays[job_id])
            return services.cancel_job(job=Job(pk=job_id), actor=user, reason="Not needed.")

        return call

    def complete(job_id):
        [job] = execution.claim_due(owner, limit=1, job_ids=[job_id])
        attempt = Attempt.objects.get(job=job, number=1)
        return lambda: execution.poll([(job, attempt)])  # as the pump applies a result

    ids = [job.pk for job in jobs]
    results = race_all(ids, cancel, complete, cleanup=[close_poll_client])

    outcomes, errors = Counter(), Counter()
    result_lost_to_cancel = []
    for job in Job.objects.filter(pk__in=ids):
        canceled, completion = results[job.pk]
        assert completion is None, (job.pk, describe(completion))  # the poller never crashes
        attempt = job.attempts.get()
        kinds = Counter(job.events.values_list("kind", flat=True))
        assert_story_matches(job)
        if isinstance(canceled, Job):
            assert job.status == Status.CANCELED
            assert kinds["canceled"] == 1 and terminal_moves(job) == 1
            if kinds["needs_review"]:
                # the draft went to review first and was then canceled: allowed, never released
                assert attempt.state == Attempt.State.SUCCEEDED and not attempt.is_stale
                assert job.is_sensitive and kinds["stale_result"] == 0
                outcomes["result to review, then canceled"] += 1
            elif attempt.state == Attempt.State.IN_FLIGHT:
                # the poller's apply lost to the cancel (ConcurrentUpdate, rolled back);
                # the cancel's propagation to the provider must still keep the result
                result_lost_to_cancel.append(job.pk)
                assert not job.artifacts.exists() and kinds["stale_result"] == 0
                outcomes["canceled, result applied by the cancel task"] += 1
            else:
                assert attempt.state == Attempt.State.SUCCEEDED and attempt.is_stale
                assert kinds["stale_result"] == 1
                outcomes["canceled, result kept as stale"] += 1
            if not kinds["needs_review"]:
                assert not job.artifacts.filter(kind=Artifact.Kind.TEXT, is_stale=False).exists()
        else:
            assert isinstance(canceled, TransitionNotAllowed), (job.pk, canceled)
            assert canceled.message
            errors[type(canceled).__name__] += 1
            expected = Status.NEEDS_REVIEW if job.is_sensitive else Status.COMPLETED
            assert job.status == expected, (job.pk, job.status)
            assert kinds["canceled"] == 0 and kinds["stale_result"] == 0
            assert kinds[expected] == 1
            assert terminal_moves(job) == (expected == Status.COMPLETED)
            assert attempt.state == Attempt.State.SUCCEEDED and not attempt.is_stale
            released = job.artifacts.filter(kind=Artifact.Kind.TEXT)
            assert released.count() == 1 and not released.get().is_stale
            assert job.cost == attempt.cost > 0
            outcomes[f"{expected}, cancel refused"] += 1

    # each winning cancel enqueued its propagation to the provider; let a worker run them
    clusters.start(chaos_env(), pump_slots=())
    in_flight = Attempt.objects.filter(job_id__in=ids, state=Attempt.State.IN_FLIGHT)
    wait_for(lambda: not in_flight.exists(), timeout=120, message="cancels propagated")
    for job in Job.objects.filter(pk__in=ids, status=Status.CANCELED):
        kinds = Counter(job.events.values_list("kind", flat=True))
        attempt = job.attempts.get()
        assert attempt.state == Attempt.State.SUCCEEDED
        if kinds["needs_review"]:
            continue
        assert attempt.is_stale and kinds["stale_result"] == 1, job.pk
        texts = job.artifacts.filter(kind=Artifact.Kind.TEXT)
        assert texts.count() == 1 and texts.get().is_stale, job.pk
        assert job.cost == attempt.cost > 0
    assert fake.stats(responses=False)["routes"].get("cancel", 0) >= len(result_lost_to_cancel)

    chaos_report(
        "R3 cancel vs complete",
        races=len(results),
        outcomes=dict(outcomes),
        cancel_refusals=dict(errors),
        results_rescued_by_cancel_task=len(result_lost_to_cancel),
    )


# --- approve vs approve ----------------------------------------------------------------------


def _drafts(workspace, submitter, job_type, count):
    drafts = []
    for _ in range(count):
        job = services.submit_job(
            workspace=workspace, submitter=submitter, job_type=job_type, input=INPUTS[job_type]
        )
        drafts.append(finish(job))
    return drafts


def test_approve_racing_approve_decides_once(fake, chaos_env, clusters, chaos_report):
    workspace = WorkspaceFactory()
    submitter = member_of(workspace)
    admins = [member_of(workspace, Role.ADMIN, first_name=n) for n in ("Ada", "Bea")]
    third = APPROVE_RACES // 3
    plan = (
        # the same reviewer twice (a double click), on drafts and on refunds
        [("same", job) for job in _drafts(workspace, submitter, "draft_support_reply", third)]
        + [("same", job) for job in _drafts(workspace, submitter, "issue_refund", third)]
        # two reviewers, each claiming and approving at the same moment
        + [
            ("two", job)
            for job in _drafts(workspace, submitter, "issue_refund", APPROVE_RACES - 2 * third)
        ]
    )
    kind_of = {job.pk: kind for kind, job in plan}
    for kind, job in plan:
        if kind == "same":
            review.claim_draft(job=job, reviewer=admins[0])

    def approver(index):
        def side(job_id):
            reviewer = admins[0] if kind_of[job_id] == "same" else admins[index]
            job = Job(pk=job_id)

            def call():
                if kind_of[job_id] == "two":
                    review.claim_draft(job=job, reviewer=reviewer)
                return review.approve_draft(job=job, reviewer=reviewer)

            return call

        return side

    ids = list(kind_of)
    results = race_all(ids, approver(0), approver(1))

    refusals = Counter()
    for job_id, pair in results.items():
        decisions = [r for r in pair if isinstance(r, Decision)]
        losers = [r for r in pair if not isinstance(r, Decision)]
        assert len(decisions) == 1, (job_id, pair)
        [loser] = losers
        assert isinstance(loser, ReviewError | JobError), (job_id, loser)
        assert loser.message
        refusals[f"{kind_of[job_id]}: {type(loser).__name__}"] += 1
        assert Decision.objects.filter(job_id=job_id).count() == 1

    # the approved refunds' release tasks were enqueued on commit: a worker runs them
    refunds = Job.objects.filter(pk__in=ids, job_type="issue_refund")
    clusters.start(chaos_env(), pump_slots=())
    wait_for(
        lambda: not refunds.exclude(status__in=TERMINAL).exists(),
        timeout=120,
        message="every approved refund released",
    )
    for job in Job.objects.filter(pk__in=ids):
        kinds = Counter(job.events.values_list("kind", flat=True))
        assert job.status == Status.COMPLETED, (job.pk, job.status)
        assert kinds["approved"] == 1 and terminal_moves(job) == 1
        assert_story_matches(job)
        if job.job_type == "issue_refund":
            record = ReleaseRecord.objects.get(job=job)
            assert (record.state, record.runs, record.deliveries) == ("succeeded", 1, 1)
            assert RefundLedgerEntry.objects.filter(job=job).count() == 1
            assert kinds["released"] == 1

    chaos_report(
        "R3 approve vs approve",
        races=len(results),
        same_reviewer_twice=sum(1 for k in kind_of.values() if k == "same"),
        two_reviewers=sum(1 for k in kind_of.values() if k == "two"),
        refunds_released_once=refunds.count(),
        refusals=dict(refusals),
    )
