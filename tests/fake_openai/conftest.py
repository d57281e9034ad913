"""Fixtures for the fake OpenAI server tests: one server per session, reset before each test,
and validators over the reference OpenAPI spec (loaded once per session: it is 3.4 MB)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from fake_openai.testing import FakeServer

REPO = Path(__file__).resolve().parents[2]
SPEC_URI = "urn:openai:openapi"


def spec_path() -> Path:
    default = REPO.parent / "shared" / "reference" / "openai-openapi.json"
    return Path(os.environ.get("STEWARD_OPENAPI_SPEC", default))


class SpecSchemas:
    """Validates instances against ``components.schemas.<name>`` of the reference spec."""

    def __init__(self, spec: dict) -> None:
        self.names = set(spec["components"]["schemas"])
        resource = Resource.from_contents(spec, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(SPEC_URI, resource)
        self._validators: dict[str, Draft202012Validator] = {}

    def validator(self, name: str) -> Draft202012Validator:
        if name not in self.names:
            raise KeyError(f"no schema {name!r} in the spec")
        if name not in self._validators:
            ref = {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}
            self._validators[name] = Draft202012Validator(ref, registry=self.registry)
        return self._validators[name]

    def errors(self, name: str, instance) -> list[str]:
        found = self.validator(name).iter_errors(instance)
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in found]

    def check(self, name: str, instance) -> None:
        problems = self.errors(name, instance)
        assert not problems, f"{name} invalid:\n" + "\n".join(problems[:10])


@pytest.fixture(scope="session")
def schemas() -> SpecSchemas:
    path = spec_path()
    if not path.exists():
        pytest.fail(f"reference spec not found at {path}; set STEWARD_OPENAPI_SPEC")
    return SpecSchemas(json.loads(path.read_bytes()))


@pytest.fixture(scope="session")
def server():
    with FakeServer(seed="tests") as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh(server):
    server.reset()
    yield


@pytest.fixture(scope="session")
def client(server):
    """One SDK client for the session: building one costs an SSL context each time."""
    return server.client(timeout=10)
