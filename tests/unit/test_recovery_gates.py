"""The production gates: each refuses with its own message, its override passes and
is said, and an environment that is not protected meets none of them."""

import json
from datetime import UTC, datetime

import pytest
from ansible.module_utils.recovery_gates import (
    NOT_APPLICABLE,
    OVERRIDDEN,
    PASSED,
    REFUSED,
    check_inputs,
    evaluate,
    refusals,
    rehearsal_reports,
)

PRINT = "a" * 64
WINDOW = {"days": ["sat", "sun"], "start_hour": 2, "end_hour": 6}
SATURDAY_3AM = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
FRIDAY_NOON = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
STAGING_OK = {"environment": "staging", "run_id": "20261203T100000Z", "outcome": "succeeded",
              "schema_fingerprint": PRINT}


def gates(**changes):
    args = {"environment": "production", "protected": ["production"], "confirm": "production", "overrides": [],
            "window": WINDOW, "now": SATURDAY_3AM, "fingerprint": PRINT, "reports": [STAGING_OK]} | changes
    return {g["gate"]: g for g in evaluate(**args)}


def test_all_pass_when_confirmed_rehearsed_and_inside_the_window():
    assert {name: g["status"] for name, g in gates().items()} == {
        "confirm": PASSED, "staging_first": PASSED, "maintenance_window": PASSED}


def test_an_unprotected_environment_meets_no_gate():
    assert {g["status"] for g in gates(environment="staging", confirm="").values()} == {NOT_APPLICABLE}


def test_confirm_refuses_without_the_environments_name():
    result = gates(confirm="yes")
    assert result["confirm"]["status"] == REFUSED
    assert "re-run with -e recovery_confirm=production" in result["confirm"]["message"]
    assert refusals(result.values()) == ["confirm: " + result["confirm"]["message"]]


@pytest.mark.parametrize("reports", [
    [], [STAGING_OK | {"outcome": "failed"}], [STAGING_OK | {"schema_fingerprint": "b" * 64}]])
def test_staging_first_refuses_without_a_successful_rehearsal_on_the_same_schema(reports):
    result = gates(reports=reports)
    assert result["staging_first"]["status"] == REFUSED
    assert "recover staging first" in result["staging_first"]["message"]
    assert gates(reports=reports, overrides=["staging_first"])["staging_first"]["status"] == OVERRIDDEN


def test_a_resumed_run_on_the_converted_schema_is_proved_by_stagings_end_state():
    ended = STAGING_OK | {"schema_fingerprint": "b" * 64, "schema_fingerprint_after": PRINT}
    assert gates(reports=[ended])["staging_first"]["status"] == PASSED


def test_the_window_refuses_outside_and_its_override_is_said():
    result = gates(now=FRIDAY_NOON)
    assert result["maintenance_window"]["status"] == REFUSED
    assert "Fri 12:00 UTC is outside the maintenance window (sat,sun 02:00-06:00 UTC)" in (
        result["maintenance_window"]["message"])
    assert gates(now=FRIDAY_NOON, overrides=["maintenance_window"])["maintenance_window"]["status"] == OVERRIDDEN
    assert gates(window=None)["maintenance_window"]["status"] == NOT_APPLICABLE


@pytest.mark.parametrize(("overrides", "window", "message"), [
    (["confirm"], None, "recovery_gate_overrides may name staging_first, maintenance_window, not confirm"),
    ([], {"days": ["someday"], "start_hour": 1, "end_hour": 2}, "days must be weekdays"),
    ([], {"days": ["mon"], "start_hour": 6, "end_hour": 2}, "start_hour < end_hour"),
])
def test_bad_input_is_named(overrides, window, message):
    with pytest.raises(ValueError, match=message):
        check_inputs(overrides=overrides, window=window)


def test_reports_are_read_newest_first_and_unreadable_ones_skipped(tmp_path):
    for run_id in ("20261201T000000Z", "20261202T000000Z"):
        (tmp_path / run_id).mkdir()
        (tmp_path / run_id / "run-report.json").write_text(json.dumps(STAGING_OK | {"run_id": run_id}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run-report.json").write_text("{")
    found = rehearsal_reports([str(tmp_path)])
    assert [r["run_id"] for r in found] == ["20261202T000000Z", "20261201T000000Z"]


def test_a_playbook_meets_only_the_gates_that_apply_to_it():
    # restore.yml and rotate_credentials.yml change no schema: confirm and the window, not staging first.
    result = gates(applying=("confirm", "maintenance_window"), confirm="", reports=[], now=FRIDAY_NOON)
    assert {name: g["status"] for name, g in result.items()} == {
        "confirm": REFUSED, "staging_first": NOT_APPLICABLE, "maintenance_window": REFUSED}
    assert result["staging_first"]["message"] == "not a gate of this playbook"
    assert [r.split(":")[0] for r in refusals(result.values())] == ["confirm", "maintenance_window"]
    passed = gates(applying=("confirm", "maintenance_window"), reports=[])
    assert {name: g["status"] for name, g in passed.items()} == {
        "confirm": PASSED, "staging_first": NOT_APPLICABLE, "maintenance_window": PASSED}
