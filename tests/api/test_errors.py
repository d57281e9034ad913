"""Every API error is RFC 9457 problem details, whoever produced it: DRF, Django or a crash."""

import json

import pytest
from django.conf import settings as django_settings
from django.test import Client, RequestFactory

from config.api import ApiProblemMiddleware

PROBLEM = "application/problem+json"


def assert_problem(response, status):
    assert response.status_code == status
    assert response["Content-Type"] == PROBLEM
    body = json.loads(response.content)
    assert body["status"] == status
    assert body["type"].startswith("urn:steward:problem:")
    assert body["title"] and body["detail"]
    return body


@pytest.mark.parametrize("debug", [False, True])
def test_unknown_api_path_is_a_404_problem_even_in_debug(api, settings, debug):
    settings.DEBUG = debug
    body = assert_problem(api.get("/api/v1/no-such-thing"), 404)
    assert body["detail"] == "There is no API endpoint at /api/v1/no-such-thing."


def test_a_job_id_that_is_not_a_uuid_is_a_404_problem(api):
    assert_problem(api.get("/api/v1/jobs/42"), 404)


def test_wrong_method_is_a_405_problem_with_allow(api):
    response = api.delete("/api/v1/jobs")
    body = assert_problem(response, 405)
    assert body["detail"] == 'Method "DELETE" not allowed.'
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"


def test_unacceptable_accept_header_is_a_406_problem(api):
    assert_problem(api.get("/api/v1/jobs", headers={"Accept": "text/html"}), 406)


def test_pages_outside_the_api_keep_their_html_errors(api):
    response = api.get("/no-such-page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith(PROBLEM)


@pytest.mark.parametrize("debug", [False, True])
def test_an_unhandled_exception_under_the_api_is_a_500_problem_without_internals(
    settings, debug, caplog
):
    settings.DEBUG = debug
    request = RequestFactory().get("/api/v1/jobs")
    middleware = ApiProblemMiddleware(lambda request: None)
    response = middleware.process_exception(request, RuntimeError("secret internals"))
    body = assert_problem(response, 500)
    assert "secret internals" not in response.content.decode()
    assert body["title"] == "Server error"
    assert "secret internals" in caplog.text  # logged for the operators


def test_unhandled_exceptions_elsewhere_are_left_to_django():
    request = RequestFactory().get("/jobs/")
    assert ApiProblemMiddleware(lambda r: None).process_exception(request, RuntimeError()) is None


def test_the_problem_middleware_is_installed_outside_the_session_middleware():
    middleware = django_settings.MIDDLEWARE
    assert middleware.index("config.api.ApiProblemMiddleware") < middleware.index(
        "django.contrib.sessions.middleware.SessionMiddleware"
    )


def test_unknown_path_without_credentials_is_still_a_problem(db):
    assert_problem(Client().post("/api/v1/nowhere", {}), 404)
