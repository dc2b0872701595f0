"""What verify.yml and the run report of a recovery must show, for test_recover.py's end-to-end
run: verify names the broken environment's drift, the run report of the recovery records it,
verify then passes and names drift introduced by hand."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import stat

import psycopg2
import requests

from tests.playbook_runner import run_playbook

SERVICE = "srv-d0simulatedapi00000"
HOST = "test-env"


def newest(pattern):
    found = sorted(glob.glob(pattern))
    assert found, pattern
    return found[-1]


def read(path, mode="r"):
    with open(path, mode) as handle:
        return handle.read()


def private(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def assert_verify_names_the_broken_environment(broken, reports) -> None:
    """Every drift named, nothing changed, a non-zero exit."""
    assert broken.rc != 0, broken.output[-3000:]
    assert broken.recap(HOST)["changed"] == 0
    for text in ("DRIFT: local: 3 check(s) failed", "86 key or FK-linked column(s) are not character varying(36)",
                 "alembic_version holds f867c7e3d51c but the schema is at ba1a5bcdb110",
                 "convert_keys would convert 87 column(s)"):
        assert text in broken.output, text
    first_report = json.loads(read(newest(f"{reports}/{HOST}/verify-*.json")))
    assert first_report["result"] == "drift"
    assert {c["id"]: c["status"] for c in first_report["checks"]}["foreign_keys"] == "info"


def assert_run_report_of_a_recovery(reports) -> None:
    run_dir = os.path.dirname(newest(f"{reports}/{HOST}/*/run-report.json"))
    report = json.loads(read(os.path.join(run_dir, "run-report.json")))
    assert report["outcome"] == "succeeded"
    assert {s["id"]: s["status"] for s in report["steps"]} == {s["id"]: "done" for s in report["steps"]}
    figures = report["figures"]
    assert figures["foreign_keys"] == {"at_investigation": 100, "before": 100, "after": 100}
    assert figures["columns_converted"] == 87 and figures["exclusive_lock_seconds"] > 0
    manifest = os.path.join(figures["backup"]["path"], "manifest.json")
    assert figures["backup"]["manifest_sha256"] == hashlib.sha256(read(manifest, "rb")).hexdigest()
    assert figures["backup"]["verified_level"] == "restore"
    assert (figures["alembic"]["stored"], figures["alembic"]["set_to"], figures["alembic"]["head"]) == (
        ["f867c7e3d51c"], "ba1a5bcdb110", "b354d12d1e7d")
    assert figures["deploy"]["status"] == "live" and figures["health"]["status"] == 200
    assert report["state"]["maintenance_mode"] == "off"
    assert private(run_dir) == 0o700
    for name in ("run-report.json", "run-report.md"):
        assert private(os.path.join(run_dir, name)) == 0o600


def assert_verify_passes_then_names_new_drift(environment, extra, reports, earlier_runs, secrets) -> None:
    # Clean: passes, changes nothing; the FKs the migrations added since are theirs.
    clean = run_playbook("playbooks/verify.yml", extra)
    assert clean.rc == 0, clean.output[-3000:]
    assert clean.recap(HOST)["changed"] == 0
    assert "Foreign keys: ok: 117 FKs, 100 recorded at the conversion of run" in clean.output
    assert "alembic_version: ok: b354d12d1e7d: the true revision and head" in clean.output

    # Drift by hand: an FK dropped, alembic_version reset, maintenance mode left on.
    with psycopg2.connect(environment["recovery_database_url"]) as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE public.api_tokens DROP CONSTRAINT api_tokens_organization_id_fkey")
        cur.execute("UPDATE alembic_version SET version_num = 'f867c7e3d51c'")
    requests.patch(f"{environment['render_api_url']}/services/{SERVICE}", timeout=10,
                   headers={"Authorization": f"Bearer {environment['render_api_key']}"},
                   json={"serviceDetails": {"maintenanceMode": {"enabled": True, "uri": ""}}}).raise_for_status()
    drifted = run_playbook("playbooks/verify.yml", extra, verbosity=3)
    assert drifted.rc != 0
    assert drifted.recap(HOST)["changed"] == 0
    assert "DRIFT: local: 4 check(s) failed" in drifted.output
    assert "1 gone: public.api_tokens.api_tokens_organization_id_fkey" in drifted.output
    assert "alembic_version holds f867c7e3d51c but the schema is at b354d12d1e7d" in drifted.output
    assert "maintenance mode is ON" in drifted.output and "/health answered 503" in drifted.output
    last = newest(f"{reports}/{HOST}/verify-*.json")
    assert private(last) == 0o600 and private(os.path.dirname(last)) == 0o700
    assert json.loads(read(last))["result"] == "drift"

    for secret in secrets:
        for run in (*earlier_runs, clean, drifted):
            assert secret not in run.output
        for path in glob.glob(f"{reports}/**/*", recursive=True):
            if os.path.isfile(path):
                assert secret not in read(path, "rb").decode(errors="replace"), path
