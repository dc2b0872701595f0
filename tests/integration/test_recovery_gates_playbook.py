"""recover.yml's gates for a protected environment, against a Render-like environment:
each refuses on its own, by name, before anything changes; --check shows every gate;
overrides are said as overrides; a staging report on the same schema passes. restore.yml
and rotate_credentials.yml meet the same gates but staging first."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg2
import requests
from ansible.module_utils.pg_catalog import CatalogReader
from ansible.module_utils.pg_catalog_fingerprint import fingerprint

from tests.db_fingerprint import fingerprint as db_fingerprint
from tests.integration.test_recover import SERVICE, recovery_vars
from tests.playbook_runner import run_playbook

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
POSTGRES = "dpg-d0simulateddb000000-a"


def _schema_fingerprint(url: str) -> str:
    with psycopg2.connect(url) as conn:
        value = fingerprint(CatalogReader(conn).schema_objects(["public"]))
    conn.close()
    return value


def _maintenance(environment) -> bool:
    service = requests.get(f"{environment['render_api_url']}/services/{SERVICE}", timeout=10,
                           headers={"Authorization": f"Bearer {environment['render_api_key']}"}).json()
    return service["serviceDetails"]["maintenanceMode"]["enabled"]


def test_each_gate_refuses_before_any_change_and_check_mode_shows_them(environment, tmp_path):
    url = environment["recovery_database_url"]
    closed_today = WEEKDAYS[(datetime.now(UTC).weekday() + 1) % 7]
    base = recovery_vars(environment, tmp_path) | {
        "recovery_protected_environments": ["local"],
        "recovery_maintenance_window": {"days": [closed_today], "start_hour": 0, "end_hour": 24}}
    before = db_fingerprint(url)

    unconfirmed = run_playbook("playbooks/recover.yml", base)
    assert unconfirmed.rc != 0
    assert "refused before any change by confirm: local is protected: re-run with -e recovery_confirm=local" in (
        unconfirmed.output)
    assert "staging_first: no successful recovery of a rehearsal environment on this schema" in unconfirmed.output
    assert f"UTC is outside the maintenance window ({closed_today} 00:00-24:00 UTC)" in unconfirmed.output

    # Confirmed and the window overridden: staging first still refuses, alone.
    confirmed = run_playbook("playbooks/recover.yml", base | {"recovery_confirm": "local",
                                                              "recovery_gate_overrides": ["maintenance_window"]})
    assert confirmed.rc != 0
    assert "refused before any change by staging_first" in confirmed.output
    assert "confirm: passed" in confirmed.output and "maintenance_window: overridden" in confirmed.output
    assert db_fingerprint(url) == before and not _maintenance(environment)

    # A staging run that succeeded on this very schema passes staging first; --check says so.
    staging = tmp_path / "staging" / "20261201T000000Z"
    staging.mkdir(parents=True)
    (staging / "run-report.json").write_text(json.dumps({
        "environment": "staging", "run_id": "20261201T000000Z", "outcome": "succeeded",
        "schema_fingerprint": _schema_fingerprint(url)}))
    planned = run_playbook("playbooks/recover.yml", base | {
        "recovery_confirm": "local", "recovery_gate_overrides": ["maintenance_window"],
        "recovery_rehearsal_reports": [str(tmp_path / "staging")]}, check=True)
    assert "staging_first: passed: staging recovered run 20261201T000000Z on the same schema" in planned.output
    # --check goes on past the conversion's backup gate (the backup it would take stands
    # for it) and plans the conversion the run would make.
    assert planned.rc == 0, planned.output[-3000:]
    assert "backup gate would pass" in planned.output and "columns to convert: 87" in planned.output
    assert db_fingerprint(url) == before and not _maintenance(environment)


def _credentials(environment) -> list[str]:
    return sorted(c["username"] for c in requests.get(
        f"{environment['render_api_url']}/postgres/{POSTGRES}/credentials", timeout=10,
        headers={"Authorization": f"Bearer {environment['render_api_key']}"}).json())


def test_restore_and_rotation_meet_the_confirm_and_window_gates(environment, tmp_path):
    """restore.yml and rotate_credentials.yml share recover.yml's gates (playbooks/tasks/gates.yml),
    except staging first (they change no schema): refused unconfirmed before any change, passed
    with -e recovery_confirm=<name>; --check lists them."""
    url = environment["recovery_database_url"]
    closed_today = WEEKDAYS[(datetime.now(UTC).weekday() + 1) % 7]
    base = recovery_vars(environment, tmp_path) | {
        "recovery_protected_environments": ["local"],
        "recovery_maintenance_window": {"days": [closed_today], "start_hour": 0, "end_hour": 24}}
    taken = run_playbook("playbooks/backup.yml", base | {"backup_verify_level": "checksum"})
    assert taken.rc == 0, taken.output[-3000:]
    before, users = db_fingerprint(url), _credentials(environment)

    for playbook in ("playbooks/restore.yml", "playbooks/rotate_credentials.yml"):
        refused = run_playbook(playbook, base)
        assert refused.rc != 0, refused.output[-3000:]
        assert ("refused before any change by confirm: local is protected: re-run with -e recovery_confirm=local"
                in refused.output), refused.output[-3000:]
        assert f"UTC is outside the maintenance window ({closed_today} 00:00-24:00 UTC)" in refused.output
        assert "staging_first: not applicable: not a gate of this playbook" in refused.output
        assert db_fingerprint(url) == before and _credentials(environment) == users

    # Confirmed, the window overridden: the rotation's --check plans it, the restore runs.
    planned = run_playbook("playbooks/rotate_credentials.yml", base | {
        "recovery_confirm": "local", "recovery_gate_overrides": ["maintenance_window"]}, check=True)
    assert planned.rc == 0, planned.output[-3000:]
    assert "confirm: passed: confirmed as local" in planned.output
    assert "maintenance_window: overridden" in planned.output
    assert "rotate: leaked users demo_app_2024, demo_app_2025 -> new user demo_app_" in planned.output
    assert _credentials(environment) == users

    restored = run_playbook("playbooks/restore.yml", base | {
        "recovery_confirm": "local", "recovery_gate_overrides": ["maintenance_window"]})
    assert restored.rc == 0, restored.output[-3000:]
    assert "confirm: passed: confirmed as local" in restored.output
    assert db_fingerprint(url) == before
