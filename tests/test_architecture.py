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


def _import_time_nodes(tree):
    """Nodes that run when the module is imported: everything outside function bodies."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            stack.extend(node.decorator_list if not isinstance(node, ast.Lambda) else [])
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


# Django's own pattern (a model's foreign key names the user model when the class is built), and
# the settings modules and entry points, which exist to read the environment at import.
IMPORT_TIME_ALLOWED = {("settings", "AUTH_USER_MODEL")}
ENTRY_POINTS = {"settings.py", "production.py", "workers.py", "asgi.py", "wsgi.py"}


def test_no_module_reads_settings_or_the_environment_at_import():
    """Settings are read when code runs, so tests and workers that change them are obeyed."""
    found = []
    for path, tree in SOURCES:
        if _app_of(path) == "config" and path.name in ENTRY_POINTS:
            continue
        for node in _import_time_nodes(tree):
            if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
                continue
            read = (node.value.id, node.attr)
            is_setting = read[0] == "settings" and read[1].isupper()
            if (is_setting or read == ("os", "environ")) and read not in IMPORT_TIME_ALLOWED:
                found.append(f"{_where(path, node)} reads {read[0]}.{read[1]}")
    assert found == []
