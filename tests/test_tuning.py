"""Tuning knobs are typed, documented, and read from the environment under their own names."""

from dataclasses import fields

import environ
import pytest
from django.conf import settings

from config.tuning import Tuning, load_tuning


def test_every_knob_has_a_default_and_a_sentence():
    for knob in fields(Tuning):
        assert knob.metadata["doc"].endswith("."), knob.name
        assert isinstance(knob.default, knob.type), knob.name


def test_every_knob_is_a_setting():
    for knob in fields(Tuning):
        assert hasattr(settings, knob.name), knob.name


def test_a_knob_is_read_from_the_environment_as_its_type(monkeypatch):
    monkeypatch.setenv("POLL_BATCH", "800")
    monkeypatch.setenv("PROVIDER_TIMEOUT", "12.5")
    values = load_tuning(environ.Env())
    assert values["POLL_BATCH"] == 800
    assert values["PROVIDER_TIMEOUT"] == 12.5
    assert values["PUMP_SLOTS"] == Tuning.PUMP_SLOTS  # unset: the default


def test_a_value_that_does_not_parse_names_the_knob(monkeypatch):
    monkeypatch.setenv("POLL_BATCH", "lots")
    with pytest.raises(ValueError, match="^POLL_BATCH: "):
        load_tuning(environ.Env())
