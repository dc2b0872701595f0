"""Bad input to the playbooks is refused before the first change, with one clear message:
a CHANGE_ME placeholder in a Render variable is an error (never "run without Render"),
running without Render is the explicit recovery_render: false (and converting without
maintenance mode needs recovery_without_maintenance: true as well), and maintenance.yml
takes exactly on/off. Real ansible-playbook, the broken fixture, the Render simulator."""

from __future__ import annotations

import glob
import hashlib
import json
import os

import pytest

from localenv.render_sim import testing
from tests.db_fingerprint import fingerprint
from tests.playbook_runner import ROOT, run_playbook

pytestmark = pytest.mark.ansible

VERSIONS_DIR = os.path.join(ROOT, "demoapp", "migrations", "versions")
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
def render(pg_cluster):
    """One simulator for the module; each test clears its journal."""
    with testing.running(pg_cluster) as (server, names, key):
        yield {"server": server, "names": names, "key": key, "control": testing.Control(server, key)}


@pytest.fixture
def extra(render, broken_db, tmp_path):
    render["control"].clear_journal()
    return {
        "recovery_environment": "staging",
        "recovery_database_url": broken_db,
        "render_api_base_url": render["server"].base_url,
        "render_api_key": render["key"],
        "render_service_id": render["names"]["service"],
        "render_postgres_id": render["names"]["postgres"],
        "investigate_alembic_versions_dir": VERSIONS_DIR,
        "investigate_report_dir": str(tmp_path / "reports"),
        "convert_keys_report_dir": str(tmp_path / "reports"),
        "convert_keys_backup_dir": str(tmp_path / "backups"),
        "backup_dir": str(tmp_path / "backups"),
    }


def mutations(render) -> list[str]:
    return [f"{e['method']} {e['path']}" for e in render["control"].journal() if e["method"] in MUTATING]


def maintenance_enabled(render) -> bool:
    return render["server"].sim.services[render["names"]["service"]].maintenance["enabled"]


@pytest.mark.parametrize("name,value", [("render_service_id", "srv-CHANGE_ME"),
                                        ("render_postgres_id", "dpg-CHANGE_ME")])
def test_a_render_placeholder_is_an_error_before_any_change(render, extra, broken_db, name, value):
    before = fingerprint(broken_db)
    result = run_playbook("playbooks/recover.yml", {**extra, name: value})
    assert result.rc != 0
    assert f"{name} still holds a CHANGE_ME placeholder" in result.output
    assert "or set recovery_render: false to run without Render" in result.output
    assert "succeeded" not in result.output
    assert fingerprint(broken_db) == before
    assert mutations(render) == []


def test_a_leaked_render_api_key_is_refused_before_any_change(render, extra, broken_db):
    """recover.yml runs the rotation's own check (same normalisation: case, sha256: prefix), and
    shows why it refused although the check reads the key under no_log."""
    before = fingerprint(broken_db)
    leaked = "sha256:" + hashlib.sha256(render["key"].encode()).hexdigest().upper()
    result = run_playbook("playbooks/recover.yml", {**extra, "credential_rotation_leaked_api_key_sha256": [leaked]})
    assert result.rc != 0
    assert "matches leaked fingerprint #1" in result.output and "revoke it in the Render Dashboard" in result.output
    assert render["key"] not in result.output
    assert fingerprint(broken_db) == before
    assert mutations(render) == []


def test_without_render_converting_without_maintenance_must_be_explicit(render, extra, broken_db, tmp_path):
    before = fingerprint(broken_db)
    # Placeholders do not matter once Render is explicitly off: nothing reads them.
    off = {**extra, "recovery_render": False, "render_service_id": "srv-CHANGE_ME",
           "render_postgres_id": "dpg-CHANGE_ME"}
    refused = run_playbook("playbooks/recover.yml", off)
    assert refused.rc != 0
    assert "recovery_render is false, so no maintenance mode stops the app's writes" in refused.output
    assert "recovery_without_maintenance: true" in refused.output
    assert fingerprint(broken_db) == before
    assert render["control"].journal() == []

    # Both choices explicit: it converts, with no Render request, and the report says Render was not used.
    done = run_playbook("playbooks/recover.yml", {**off, "recovery_without_maintenance": "true"})
    assert done.rc == 0, done.output[-4000:]
    assert fingerprint(broken_db) != before
    assert render["control"].journal() == []
    with open(sorted(glob.glob(f"{tmp_path}/reports/test-env/*/run-report.json"))[-1]) as handle:
        report = json.load(handle)
    assert report["outcome"] == "succeeded"
    assert report["render"] is False and "recovery_render is false" in report["render_detail"]
    steps = {s["id"]: s["status"] for s in report["steps"]}
    assert steps["convert"] == "done" and steps["maintenance_on"] == steps["deploy"] == "skipped"
    assert any("Deploy the app now" in line for line in report["next_action"])


@pytest.mark.parametrize("value", ["yes"])
def test_recovery_render_takes_only_true_or_false(render, extra, value):
    result = run_playbook("playbooks/recover.yml", {**extra, "recovery_render": value})
    assert result.rc != 0 and "recovery_render must be true or false" in result.output
    assert mutations(render) == []


@pytest.mark.parametrize("value", ["yes", "ON", "of", None])
def test_maintenance_takes_exactly_on_or_off(render, extra, value):
    assert not maintenance_enabled(render)
    chosen = {} if value is None else {"maintenance": value}
    refused = run_playbook("playbooks/maintenance.yml", {**extra, **chosen})
    assert refused.rc != 0
    expected = ("maintenance is required: -e maintenance=on or -e maintenance=off" if value is None
                else f"maintenance must be on or off (or true/false), got '{value}'")
    assert expected in refused.output
    assert mutations(render) == []


def test_maintenance_on_then_off(render, extra):
    turned_on = run_playbook("playbooks/maintenance.yml", {**extra, "maintenance": "on"})
    assert turned_on.rc == 0, turned_on.output[-3000:]
    assert maintenance_enabled(render)
    turned_off = run_playbook("playbooks/maintenance.yml", {**extra, "maintenance": False})
    assert turned_off.rc == 0, turned_off.output[-3000:]
    assert not maintenance_enabled(render)
    placeholder = run_playbook("playbooks/maintenance.yml", {**extra, "maintenance": "on",
                                                              "render_service_id": "srv-CHANGE_ME"})
    assert placeholder.rc != 0 and "render_service_id still holds a CHANGE_ME placeholder" in placeholder.output
    assert not maintenance_enabled(render)
