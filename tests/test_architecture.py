"""The write-path rules of DESIGN.md, checked on the source so a change that breaks one fails.

- No module imports another module's private (``_name``) helpers.
- No app enqueues another app's tasks by their string path.
- Only ``jobs.services`` writes a job's status or review state, and no app but ``jobs`` writes
  ``Job`` rows at all.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ["accounts", "config", "jobs", "notifications", "ops", "review", "fake_openai"]


def _sources():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path, ast.parse(path.read_text(), filename=str(path))


SOURCES = list(_sources())


def _where(path, node):
    return f"{path.relative_to(ROOT)}:{node.lineno}"


def test_no_private_names_are_imported_across_modules():
    found = [
        f"{_where(path, node)} imports {alias.name} from {node.module}"
        for path, tree in SOURCES
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert found == []


def _app_of(path):
    return path.relative_to(ROOT).parts[0]


def test_no_app_enqueues_another_apps_tasks_by_string():
    found = []
    for path, tree in SOURCES:
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                head, _, rest = node.value.partition(".tasks.")
                if rest and head in APPS and head != _app_of(path):
                    found.append(f"{_where(path, node)} names {node.value}")
    assert found == []


def _writes_job_rows(node):
    """``Job.objects....update(...)`` / ``bulk_update`` / ``create``: a write to job rows."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    if node.func.attr not in {"update", "bulk_update", "create", "bulk_create", "delete"}:
        return None
    target = node.func.value
    while isinstance(target, ast.Call | ast.Attribute):
        target = target.func if isinstance(target, ast.Call) else target.value
        if isinstance(target, ast.Attribute) and target.attr == "objects":
            owner = target.value
            return node if isinstance(owner, ast.Name) and owner.id == "Job" else None
    return None


def test_only_jobs_writes_job_rows():
    found = [
        f"{_where(path, node)} writes Job rows"
        for path, tree in SOURCES
        if _app_of(path) != "jobs"
        for node in ast.walk(tree)
        if _writes_job_rows(node)
    ]
    assert found == []


@pytest.mark.parametrize("field", ["status", "review_state"])
def test_only_jobs_services_change_status_or_review_state(field):
    services = ROOT / "jobs" / "services"
    found = [
        f"{_where(path, node)} sets {field}"
        for path, tree in SOURCES
        if services not in path.parents
        for node in ast.walk(tree)
        if _writes_job_rows(node) and any(kw.arg == field for kw in node.keywords)
    ]
    assert found == []
