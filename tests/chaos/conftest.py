"""Chaos and race suites (issue 8: R1, R2, R3, R9). They run on PostgreSQL + Redis only (marked
``pg``), inside the README's test command, each bounded in time. Every suite records what it
tried with ``chaos_report``; the counts are printed in pytest's terminal summary, so a reader of
the CI log sees how many jobs, faults, kills and outcomes each run had."""

import pytest
from django.conf import settings

from tests.processes import start_cluster_with_pumps, steward_env

_REPORTS = []


@pytest.fixture
def chaos_report(request):
    """``chaos_report("R1 worker kills", jobs=1000, kills=7, ...)`` records one summary line."""

    def report(suite, **counts):
        figures = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in counts.items())
        _REPORTS.append(f"{suite}: {figures}  [{request.node.name}]")

    return report


def pytest_terminal_summary(terminalreporter):
    if _REPORTS:
        terminalreporter.section("chaos and race suites: what was tried")
        for line in _REPORTS:
            terminalreporter.write_line(line)


@pytest.fixture
def chaos_env(fake):
    """Environment for qcluster processes that share this test's database, queue and fake."""

    def make(**extra):
        values = {
            "Q_CLUSTER_NAME": settings.Q_CLUSTER["name"],
            "Q_WORKERS": 2,
            "PUMP_RUN_SECONDS": 20,
            "PUMP_STALE_SECONDS": 3,
            "POLL_LEASE_SECONDS": 5,
            "POLL_MIN_INTERVAL": 0.3,
            "FAKE_OPENAI_DURATION": 1,
            # a cluster wedged by a killed worker is replaced after this long
            # (jobs.execution.cluster)
            "WORKER_WEDGE_SECONDS": 5,
        }
        values.update(extra)
        return steward_env(fake.base_url, **values)

    return make


@pytest.fixture
def clusters():
    """Start qclusters with ``clusters.start(env)``; all are stopped when the test ends."""

    class Clusters:
        started = []

        def start(self, env, *, pump_slots=(0,)):
            cluster = start_cluster_with_pumps(env, pump_slots)
            self.started.append(cluster)
            return cluster

    group = Clusters()
    yield group
    for cluster in group.started:
        cluster.stop()
