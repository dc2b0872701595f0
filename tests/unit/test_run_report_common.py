"""What the run report and the verification report share: redaction and run ids."""

from __future__ import annotations

from ansible.module_utils.run_report_common import redact, run_id_time

from tests.unit.test_run_report import PASSWORD, RUN_ID


def test_redact_walks_nested_values_and_ignores_empty_secrets():
    value = {"a": [f"x{PASSWORD}y", {"b": (PASSWORD,)}], PASSWORD: 1}
    assert redact(value, [PASSWORD, "", None]) == {"a": ["x[redacted]y", {"b": ["[redacted]"]}], "[redacted]": 1}
    assert redact(value, []) is value


def test_run_id_time():
    assert run_id_time(RUN_ID) == "2026-11-24T01:42:49Z"
    assert run_id_time("my-run") is None
