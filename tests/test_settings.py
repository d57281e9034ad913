"""The production settings path passes Django's deployment checklist, and refuses to run
with provider webhooks on but no signing secret of its own."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def production(tmp_path, *command, **env):
    """Run ``command`` (python arguments) under the production settings."""
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.production",
        "SECRET_KEY": "a-long-random-production-secret-" + "x" * 40,
        "ALLOWED_HOSTS": "steward.example.com",
        "STEWARD_DATA_DIR": str(tmp_path),
        **env,
    }
    for name in (
        "DATABASE_URL",
        "DATABASE_POOL_SIZE",
        "CONN_MAX_AGE",
        "WORKER_CONN_MAX_AGE",
        "OPENAI_WEBHOOK_SECRET",
        "OPENAI_WEBHOOKS_ENABLED",
        "DEBUG",
    ):
        if name not in env:
            full_env.pop(name, None)
    return subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


CHECK_DEPLOY = ("manage.py", "check", "--deploy", "--fail-level", "WARNING")
OWN_SECRET = "whsec_" + "b3duLXNpZ25pbmctc2VjcmV0LW9mLXRoaXMtc2VydmVy"


def test_production_settings_pass_check_deploy(tmp_path):
    result = production(tmp_path, *CHECK_DEPLOY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_with_webhooks_and_a_secret_of_its_own_passes_check_deploy(tmp_path):
    env = {"OPENAI_WEBHOOKS_ENABLED": "true", "OPENAI_WEBHOOK_SECRET": OWN_SECRET}
    result = production(tmp_path, *CHECK_DEPLOY, **env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("secret", [None, "whsec_c3Rld2FyZC1kZW1vLXdlYmhvb2stc2VjcmV0"])
def test_production_with_webhooks_but_no_secret_of_its_own_fails_check_deploy(tmp_path, secret):
    env = {"OPENAI_WEBHOOKS_ENABLED": "true"}
    if secret:
        env["OPENAI_WEBHOOK_SECRET"] = secret  # the demo's, published with Steward
    result = production(tmp_path, *CHECK_DEPLOY, **env)
    assert result.returncode != 0
    assert "steward.E001" in result.stderr


def test_the_web_server_refuses_to_start_without_a_webhook_secret(tmp_path):
    env = {"OPENAI_WEBHOOKS_ENABLED": "true"}
    result = production(tmp_path, "-c", "import config.asgi", **env)
    assert result.returncode != 0
    assert "OPENAI_WEBHOOK_SECRET is not set" in result.stderr
    env["OPENAI_WEBHOOK_SECRET"] = OWN_SECRET
    assert production(tmp_path, "-c", "import config.asgi", **env).returncode == 0


def test_production_static_files_have_hashed_names(tmp_path):
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.STORAGES['staticfiles']['BACKEND'])"
    )
    result = production(tmp_path, "-c", code)
    assert result.stdout.strip().endswith("CompressedManifestStaticFilesStorage"), result.stderr


SHOW_DATABASE = (
    "-c",
    "import django; django.setup(); from django.conf import settings as s; "
    "d = s.DATABASES['default']; "
    "print(s.DEBUG, 'pool' in d.get('OPTIONS', {}), d['CONN_MAX_AGE'], "
    "d.get('CONN_HEALTH_CHECKS'))",
)
PG = "postgres://postgres@127.0.0.1:5432/steward_settings_check"  # settings only; no connection


def test_web_processes_pool_connections_and_workers_keep_their_own(tmp_path):
    """Forked workers must not inherit the web pool (its threads do not survive a fork)."""
    web = production(tmp_path, *SHOW_DATABASE, DATABASE_URL=PG)
    workers = production(
        tmp_path,
        *SHOW_DATABASE,
        DATABASE_URL=PG,
        DJANGO_SETTINGS_MODULE="config.workers",
        STEWARD_WEB_SETTINGS="config.production",
    )
    assert web.stdout.split() == ["False", "True", "0", "False"], web.stderr
    assert workers.stdout.split() == ["False", "False", "60", "True"], workers.stderr


def test_run_workers_refuses_the_web_settings(tmp_path):
    refused = production(tmp_path, "manage.py", "run_workers", "--skip-checks")
    assert refused.returncode == 1
    assert "run_workers needs the worker settings" in refused.stderr
