"""Notification payloads: what they say, and that no secret ever leaves in one."""

import pytest
from ansible.module_utils.redaction import REDACTED, redact
from ansible.module_utils.webhook_notify import build_payload

URL = "postgresql://app:s3cr%2Ft+pw@db.internal:5432/app"
PASSWORD = "s3cr/t pw"
KEY = "rnd_ThisIsAFakeKeyForTests0001"


def test_failure_names_environment_step_duration_and_report():
    payload = build_payload(event="failure", environment="production", step="Convert the keys",
                            duration_seconds=312.44, report="reports/production/20261204T101500Z/run-report.md",
                            message="could not lock public.users")
    assert payload["text"] == ("render-key-recovery: production: recovery FAILED at 'Convert the keys' after 312 s: "
                               "could not lock public.users (report: reports/production/20261204T101500Z/"
                               "run-report.md)")
    assert (payload["event"], payload["environment"], payload["step"], payload["duration_seconds"]) == (
        "failure", "production", "Convert the keys", 312.4)


def test_start_and_success_read_as_they_are():
    assert build_payload(event="start", environment="staging")["text"] == (
        "render-key-recovery: staging: recovery started")
    assert build_payload(event="success", environment="staging", duration_seconds=61)["text"] == (
        "render-key-recovery: staging: recovery succeeded after 61 s")


def test_no_secret_in_any_spelling_and_url_credentials_masked_even_unnamed():
    message = (f"failed with {URL} and key {KEY}; plain {PASSWORD}; "
               "other postgresql://someone:unnamed-pw@host/db")
    payload = build_payload(event="failure", environment="production", message=message,
                            secrets=[PASSWORD, KEY])
    text = repr(payload)
    for secret in (PASSWORD, "s3cr%2Ft+pw", "s3cr%2Ft%20pw", KEY, "unnamed-pw"):
        assert secret not in text, secret
    assert REDACTED in payload["message"] and "postgresql://someone:********@host/db" in payload["message"]


def test_redact_walks_dicts_and_lists_and_leaves_other_values():
    assert redact({"a": ["x-secret-x", 3], "secret": None}, ["secret"]) == {
        "a": [f"x-{REDACTED}-x", 3], REDACTED: None}
    assert redact("nothing", []) == "nothing"


def test_an_unknown_event_is_refused():
    with pytest.raises(ValueError, match="event must be one of start, success, failure"):
        build_payload(event="done", environment="x")
