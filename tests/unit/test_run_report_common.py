"""What the run report and the verification report share: redaction and run ids."""

from __future__ import annotations

from datetime import UTC, datetime

from ansible.module_utils.redaction import redact
from ansible.module_utils.run_id import new_run_id, run_id_time

from filter_plugins.recovery_filters import FilterModule
from tests.unit.test_run_report import PASSWORD, RUN_ID


def test_redact_walks_nested_values_and_ignores_empty_secrets():
    value = {"a": [f"x{PASSWORD}y", {"b": (PASSWORD,)}], PASSWORD: 1}
    assert redact(value, [PASSWORD, "", None]) == {"a": ["x[redacted]y", {"b": ["[redacted]"]}], "[redacted]": 1}
    assert redact(value, []) is value


def test_run_id_time():
    assert run_id_time(RUN_ID) == "2026-11-24T01:42:49Z"
    assert run_id_time("my-run") is None


def test_a_run_id_is_the_one_given_or_a_new_one_in_the_one_format():
    run_id = FilterModule().filters()["run_id"]
    assert run_id("20260105") == "20260105"
    assert run_id_time(run_id("")) is not None
    assert run_id("", "day") == new_run_id()[:8] and len(run_id("", "day")) == 8
    assert new_run_id(datetime(2026, 11, 24, 1, 42, 49, tzinfo=UTC)) == RUN_ID
