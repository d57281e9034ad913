"""R2: a few hundred jobs through a real qcluster while the fake provider injects faults into
a fifth of all requests (429 with Retry-After, 500, 503, answers slower than PROVIDER_TIMEOUT,
connection resets, malformed JSON), on top of per-job scenarios (completed, failed with an
error code, incomplete with a reason).

What a user relies on: every job ends where its scenario sends it; a transient fault costs at
most an attempt (and a job fails for it only when every one of its attempts hit one); no call
that got a 429 is repeated before its Retry-After; a job's cost is the sum of its attempts'.
"""

import time
from collections import Counter

import pytest

from jobs import services
from jobs.models import Artifact, Attempt, FailureKind, Job, Status
from tests.factories import WorkspaceFactory, member_of
from tests.processes import wait_for

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.pg,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("empty_task_queue"),
]

JOBS = 300
RETRY_AFTER = 2  # seconds the fake asks for on every injected 429
PROVIDER_TIMEOUT = 1.5  # the workers' per-call timeout; "slow" answers take longer
FAULTS = {"429": 0.05, "500": 0.04, "503": 0.04, "slow": 0.02, "reset": 0.025, "malformed": 0.025}

# scenario name -> (input directive, share of the jobs)
SCENARIOS = {
    "completed": ("", 0.6),
    "failed:server_error": ("[fake:outcome=failed:server_error]", 0.1),
    "failed:invalid_prompt": ("[fake:outcome=failed:invalid_prompt]", 0.1),
    "incomplete:max_output_tokens": ("[fake:outcome=incomplete:max_output_tokens]", 0.1),
    "incomplete:content_filter": ("[fake:outcome=incomplete:content_filter]", 0.1),
}
# Error codes Steward's adapter gives transient trouble: injected HTTP faults, timeouts, resets,
# unreadable answers, and the provider's own retryable failure codes.
TRANSIENT_CODES = {
    "rate_limit_exceeded",
    "500",
    "503",
    "timeout",
    "connection_error",
    "bad_response",
    "server_error",
}


@pytest.fixture
def faulty_fake(fake):
    fake.configure(
        seed="r2", faults=FAULTS, retry_after=RETRY_AFTER, slow_seconds=PROVIDER_TIMEOUT + 1
    )
    yield fake
    fake.reset()


class RequestLog:
    """The fake keeps its last 2,000 requests; read it often and keep every line once."""

    def __init__(self, fake):
        self.fake, self.entries = fake, {}

    def collect(self):
        for entry in self.fake.log(limit=2000):
            self.entries[entry["request_id"]] = entry

    def in_order(self):
        return sorted(self.entries.values(), key=lambda e: e["time"])


def _submit(count):
    workspace = WorkspaceFactory()
    user = member_of(workspace)
    plan = []
    for name, (directive, share) in SCENARIOS.items():
        plan += [(name, directive)] * round(count * share)
    jobs = {}
    for number, (name, directive) in enumerate(plan):
        job = services.submit_job(
            workspace=workspace,
            submitter=user,
            job_type="summarize_document",
            input={"title": f"R2 {number}", "document": f"Quarterly numbers {number}. {directive}"},
        )
        jobs[job.pk] = name
    return jobs


def _unfinished(ids):
    return Job.objects.filter(pk__in=ids, status__in=[Status.QUEUED, Status.RUNNING]).count()


def _check_attempts(job, attempts):
    """Every attempt but the last ended in a transient failure (else there would be no next
    attempt), and the job never used more attempts than it may."""
    assert 1 <= len(attempts) <= job.attempt_limit, job
    assert job.attempt_count == len(attempts), job
    for attempt in attempts[:-1]:
        assert attempt.state == Attempt.State.FAILED, (job, attempt.number, attempt.state)
        assert attempt.error_code in TRANSIENT_CODES, (job, attempt.number, attempt.error_code)


def _exhausted_by_transient_faults(job, attempts):
    return (
        job.status == Status.FAILED
        and job.failure_retryable
        and len(attempts) == job.attempt_limit
        and all(a.error_code in TRANSIENT_CODES for a in attempts)
    )


def _check_outcome(job, scenario, attempts):
    """The status the scenario demands, or failed because every attempt hit a transient fault."""
    last = attempts[-1]
    if scenario == "failed:server_error":
        # the provider's server_error is itself retryable: the job uses all its attempts
        assert _exhausted_by_transient_faults(job, attempts), job
        # the job fails with its last attempt's kind: the provider's server_error, or an
        # injected fault that hit that attempt (a slow answer is a timeout)
        assert last.error_kind in (FailureKind.PROVIDER, FailureKind.TIMEOUT), last.error_kind
        assert job.failure_kind == last.error_kind, (job.failure_kind, last.error_kind)
        return "failed (attempts exhausted)"
    if _exhausted_by_transient_faults(job, attempts):
        return "failed (attempts exhausted)"
    if scenario == "completed":
        assert job.status == Status.COMPLETED, (job, last.error_code)
        assert last.state == Attempt.State.SUCCEEDED
        released = job.artifacts.filter(kind=Artifact.Kind.TEXT, is_stale=False)
        assert released.count() == 1 and released.get().attempt_id == last.pk
        assert job.events.filter(kind="completed").count() == 1
        return "completed"
    assert job.status == Status.FAILED, (job, scenario, last.error_code)
    assert job.events.filter(kind="failed").count() == 1
    assert not job.artifacts.filter(kind=Artifact.Kind.TEXT).exists()
    if scenario == "failed:invalid_prompt":
        assert last.error_code == "invalid_prompt"
        assert (job.failure_kind, job.failure_retryable) == (FailureKind.INPUT, False)
        assert job.needs_human
        return "failed (invalid_prompt)"
    reason = scenario.split(":")[1]
    assert last.error_code == reason
    expected_kind = FailureKind.POLICY if reason == "content_filter" else FailureKind.PROVIDER
    assert (job.failure_kind, job.failure_retryable) == (expected_kind, False)
    assert job.needs_human and job.has_partial_output
    assert job.events.get(kind="failed").data["incomplete_reason"] == reason
    assert job.artifacts.filter(kind=Artifact.Kind.PARTIAL, attempt=last).count() == 1
    return f"failed ({reason})"


def _retrieve_retry_after_violations(entries):
    """Retrieves of a response repeated sooner than the Retry-After of the 429 answered just
    before, from the fake's request log."""
    last_429, violations, checked = {}, [], 0
    for entry in entries:
        if entry["route"] != "retrieve":
            continue
        key = entry["response_id"]
        if key in last_429:
            checked += 1
            gap = entry["time"] - last_429.pop(key)
            if gap < RETRY_AFTER:
                violations.append((key, round(gap, 3)))
        if entry["status"] == 429:
            last_429[key] = entry["time"]
    return violations, checked


def _create_retry_after_violations(ids):
    """New attempts started sooner than the Retry-After of the 429 that ended the attempt
    before. A 429 answers a create before the fake reads its metadata, so the log cannot name
    the job; the attempts can: the 429 came before the attempt finished, and the next create
    after the next attempt started, so their distance is a lower bound of the real gap."""
    limited = Attempt.objects.filter(
        job_id__in=ids, error_code="rate_limit_exceeded", provider_response_id=None
    )
    violations, checked = [], 0
    for attempt in limited:
        following = Attempt.objects.filter(job=attempt.job_id, number=attempt.number + 1).first()
        if following is None:
            continue  # the job had no attempts left
        checked += 1
        gap = (following.started_at - attempt.finished_at).total_seconds()
        if gap < RETRY_AFTER:
            violations.append((attempt.job_id, attempt.number, round(gap, 3)))
    return violations, limited.count(), checked


def test_jobs_end_as_their_scenario_demands_under_injected_faults(
    faulty_fake, chaos_env, clusters, chaos_report
):
    jobs = _submit(JOBS)
    log = RequestLog(faulty_fake)
    clusters.start(
        chaos_env(PROVIDER_TIMEOUT=PROVIDER_TIMEOUT, POLL_LEASE_SECONDS=15, PUMP_RUN_SECONDS=30)
    )

    def all_finished():
        log.collect()
        return _unfinished(list(jobs)) == 0

    wait_for(all_finished, timeout=170, interval=1.5, message=f"all {JOBS} jobs finished")
    time.sleep(0.5)
    log.collect()
    stats = faulty_fake.stats(responses=False)
    # every request the fake saw is in the collected log, so the checks below cover them all
    assert len(log.entries) == stats["requests_total"]

    outcomes = Counter()
    by_scenario = Counter()
    for job in Job.objects.filter(pk__in=list(jobs)):
        scenario = jobs[job.pk]
        attempts = list(job.attempts.order_by("number"))
        _check_attempts(job, attempts)
        outcome = _check_outcome(job, scenario, attempts)
        outcomes[outcome] += 1
        by_scenario[f"{scenario} -> {outcome}"] += 1
        assert job.cost == sum(a.cost for a in attempts), job
        assert job.input_tokens == sum(a.input_tokens for a in attempts), job
        assert job.output_tokens == sum(a.output_tokens for a in attempts), job
        if any(a.provider_status in ("completed", "failed", "incomplete") for a in attempts):
            assert job.cost > 0, job  # a provider answer with usage was billed

    entries = log.in_order()
    violations, retrieves_checked = _retrieve_retry_after_violations(entries)
    assert not violations, violations[:10]
    violations, limited_creates, creates_checked = _create_retry_after_violations(list(jobs))
    assert not violations, violations[:10]
    # each create the fake answered with 429 ended one attempt, with that code
    assert limited_creates == sum(
        1 for e in entries if e["route"] == "create" and e["status"] == 429
    )
    assert retrieves_checked > 0 and creates_checked > 0  # the rule was really exercised

    faults = Counter(e["fault"] for e in entries if e["fault"])
    sdk_retries = sum(1 for e in entries if e["retry_count"] not in (None, "0"))
    steward_retries = Attempt.objects.filter(job_id__in=list(jobs), number__gt=1).count()
    assert sum(faults.values()) > 0.1 * len(entries)  # the fault rate really was about 20 %
    exhausted_completions = by_scenario["completed -> failed (attempts exhausted)"]
    chaos_report(
        "R2 faults",
        jobs=len(jobs),
        requests=len(entries),
        faults_injected=dict(faults),
        retries=f"{steward_retries} new attempts + {sdk_retries} SDK retrieve retries",
        retry_after_checked=f"{creates_checked} creates, {retrieves_checked} retrieves",
        outcomes=dict(outcomes),
        completed_scenario_exhausted=exhausted_completions,
    )
