"""The OpenAPI schema documents every endpoint and its errors; the docs page works offline."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from drf_spectacular.validation import validate_schema

CONTRACT = {
    "/api/v1/job-types": {"get"},
    "/api/v1/jobs": {"get", "post"},
    "/api/v1/jobs/{job_id}": {"get"},
    "/api/v1/jobs/{job_id}/cancel": {"post"},
    "/api/v1/jobs/{job_id}/retry": {"post"},
    "/api/v1/jobs/{job_id}/archive": {"post"},
    "/api/v1/jobs/{job_id}/events": {"get"},
    "/api/v1/jobs/{job_id}/events/stream": {"get"},
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_schema_is_valid_openapi_3(schema):
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")


def test_schema_has_every_contract_path(schema):
    documented = {path: set(item) for path, item in schema["paths"].items()}
    for path, methods in CONTRACT.items():
        assert methods <= documented.get(path, set()), path


def test_every_operation_documents_its_errors_as_problem_details(schema):
    assert set(schema["components"]["schemas"]["Problem"]["required"]) == {
        "type",
        "title",
        "status",
        "detail",
    }
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        for code in ("401", "429", "default"):
            content = responses[code]["content"]
            assert list(content) == ["application/problem+json"], (path, method, code)
        assert operation["security"][0] == {"bearerAuth": []}, (path, method)


def test_job_endpoints_document_404_and_actions_document_409(schema):
    for path, method, operation in operations(schema):
        if "{job_id}" in path:
            assert "404" in operation["responses"], (path, method)
        if path.endswith(("/cancel", "/retry", "/archive")):
            assert "409" in operation["responses"], path
    submit = schema["paths"]["/api/v1/jobs"]["post"]
    assert {"201", "400", "422"} <= set(submit["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in submit["parameters"])


def test_event_stream_is_documented_as_text_event_stream(schema):
    stream = schema["paths"]["/api/v1/jobs/{job_id}/events/stream"]["get"]
    assert list(stream["responses"]["200"]["content"]) == ["text/event-stream"]
    assert any(p["name"] == "Last-Event-ID" for p in stream["parameters"])


def test_bearer_scheme_is_declared(schema):
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A personal API token from /settings/tokens/ (starts with `stw_`).",
    }


@pytest.mark.django_db
def test_docs_page_loads_only_local_static_assets():
    response = Client().get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) >= 3
    for url in assets:
        assert url.startswith("/static/drf_spectacular_sidecar/"), url
        assert finders.find(url.removeprefix("/static/")), f"{url} is not a bundled file"
    # Swagger UI's validator badge would call swagger.io: it is switched off.
    assert '"validatorUrl": null' in html
    assert '"/api/v1/schema/"' in html
