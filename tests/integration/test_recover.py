"""recover.yml end to end, as `make demo` runs it: a Render-like environment of its
own (cluster with the broken fixture, Render simulator), verify.yml naming its drift, the
whole recovery, a second run that changes nothing, then verify.yml passing and naming drift
introduced afterwards. No secret may appear in the output at -vvv nor in any report."""

import glob
import json
import os
import threading
import time

import psycopg2
import pytest
import requests
import yaml

from tests.integration.verify_support import (
    assert_run_report_of_a_recovery,
    assert_verify_names_the_broken_environment,
    assert_verify_passes_then_names_new_drift,
)
from tests.playbook_runner import ROOT, run_playbook

VERSIONS_DIR = os.path.join(ROOT, "demoapp", "migrations", "versions")
SERVICE = "srv-d0simulatedapi00000"


LEAKED = ["demo_app_2024", "demo_app_2025"]

with open(os.path.join(ROOT, "inventories", "local", "group_vars", "app_environments.yml")) as _handle:
    _LOCAL = yaml.safe_load(_handle)
# The local inventory's post-deploy proof, as make demo runs it (its header reads a file: local_proof).
LOCAL_PROOF = {key: _LOCAL[key] for key in ("app_deploy_smoke_requests", "app_deploy_smoke_cleanup",
                                            "app_deploy_frontend_url")}


def local_proof(environment) -> dict:
    """LOCAL_PROOF with its header: the simulated app's API token."""
    return LOCAL_PROOF | {"app_deploy_smoke_headers": {"Authorization": f"Bearer {environment['app_api_token']}"}}


def api(environment, path):
    return requests.get(f"{environment['render_api_url']}{path}", timeout=10,
                        headers={"Authorization": f"Bearer {environment['render_api_key']}"}).json()


def database_url(environment):
    """The service's DATABASE_URL (the default user's), reachable from here."""
    url = api(environment, f"/services/{SERVICE}/env-vars/DATABASE_URL")["value"]
    return url.replace("@localhost:", "@127.0.0.1:")


def recovery_vars(environment, tmp_path) -> dict:
    return {
        "recovery_environment": "local",
        "recovery_database_url": environment["recovery_database_url"],
        "render_api_base_url": environment["render_api_url"],
        "render_api_key": environment["render_api_key"],
        "render_service_id": SERVICE,
        "render_postgres_id": "dpg-d0simulateddb000000-a",
        "investigate_alembic_versions_dir": VERSIONS_DIR,
        "investigate_report_dir": str(tmp_path / "reports"),
        "convert_keys_report_dir": str(tmp_path / "reports"),
        "convert_keys_backup_dir": str(tmp_path / "backups"),
        "backup_dir": str(tmp_path / "backups"),
        # The simulator's demo database has two leaked users (localenv/render_sim/example_state.yml).
        "credential_rotation_leaked_users": LEAKED,
        "credential_rotation_services": [{"service": SERVICE}],
        "credential_rotation_user_prefix": "demo_app",
    }


def _webhooks(environment) -> list[dict]:
    root = environment["render_api_url"].rsplit("/v1", 1)[0]
    return requests.get(f"{root}/__sim__/webhooks", timeout=10,
                        headers={"Authorization": f"Bearer {environment['render_api_key']}"}).json()


def test_recover_then_nothing_to_do_and_verify_names_drift_before_and_after(environment, tmp_path):
    """verify.yml names the broken environment's drift; recover.yml (rehearsal, webhook, the
    local post-deploy proof, rotation) at -vvv recovers it with its run report; a second run
    changes nothing; verify.yml then passes, and names drift introduced afterwards."""
    extra = recovery_vars(environment, tmp_path) | {"verify_health_delay": 1}
    reports = tmp_path / "reports"
    broken = run_playbook("playbooks/verify.yml", extra)
    assert_verify_names_the_broken_environment(broken, reports)

    # The conversion rehearsed on a scratch restore first, and the team told at start and end.
    extra |= {"convert_keys_rehearse": True,
              "recovery_webhook_url": environment["render_api_url"].rsplit("/v1", 1)[0]
              + "/__sim__/webhook/T0-fake-hook-token"}
    # The post-deploy proof of the local inventory: frontend, smoke requests through the app's API.
    extra |= local_proof(environment)
    leaked_url = database_url(environment)
    with psycopg2.connect(leaked_url, connect_timeout=5):
        pass  # the leaked default user's password works before the run
    first = run_playbook("playbooks/recover.yml", extra, verbosity=3)
    assert first.rc == 0, first.output[-4000:]
    for secret in (psycopg2.extensions.parse_dsn(environment["recovery_database_url"])["password"],
                   environment["render_api_key"], environment["app_api_token"]):
        assert secret not in first.output
    for step in ("conversion needed: yes", "rehearsal passed on a scratch restore of", "Render export exp-",
                 "backup gate passed", "converted 87 columns", "maintenance mode confirmed from outside: http",
                 "alembic_version: f867c7e3d51c -> ba1a5bcdb110", "is live", "/health answered 200",
                 "smoke: 4 smoke requests answered as expected; cleanup: 3 of 3 answered as expected",
                 "none matches a failure pattern",
                 "rotate: leaked users demo_app_2024, demo_app_2025 -> new user demo_app_"):
        assert step in first.output, step
    assert_run_report_of_a_recovery(reports)

    sent = [w["body"] for w in _webhooks(environment)]
    assert [b["event"] for b in sent] == ["start", "success"]
    assert sent[1]["text"].startswith("render-key-recovery: local: recovery succeeded after ")
    assert sent[1]["report"].endswith("/run-report.md") and os.path.exists(sent[1]["report"])
    for secret in (psycopg2.extensions.parse_dsn(environment["recovery_database_url"])["password"],
                   environment["render_api_key"], "T0-fake-hook-token"):
        assert secret not in repr(sent) and secret not in first.output
    with open(sent[1]["report"].replace(".md", ".json"), encoding="utf-8") as handle:
        report = json.load(handle)
    assert report["figures"]["rehearsal"]["seconds"] > 0
    assert report["proof"]["maintenance_check"]["status"] == 503 and report["proof"]["smoke"]["ok"]
    assert environment["app_api_token"] not in json.dumps(report)
    assert report["schema_fingerprint"] and report["schema_fingerprint_after"] != report["schema_fingerprint"]

    # The leaked users are gone (the known password really fails); the app runs as the new user.
    new_url = database_url(environment)
    assert psycopg2.extensions.parse_dsn(new_url)["user"].startswith("demo_app_2")
    assert psycopg2.extensions.parse_dsn(new_url)["password"] not in first.output
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(leaked_url, connect_timeout=5)
    users = [c["username"] for c in api(environment, "/postgres/dpg-d0simulateddb000000-a/credentials")]
    assert not set(LEAKED) & set(users) and "app_owner" in users

    with psycopg2.connect(environment["recovery_database_url"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT version_num FROM alembic_version")  # the deploy's pre-deploy migrated
        assert cur.fetchall() == [("b354d12d1e7d",)]
    service = requests.get(f"{environment['render_api_url']}/services/{SERVICE}", timeout=10,
                           headers={"Authorization": f"Bearer {environment['render_api_key']}"}).json()
    assert service["serviceDetails"]["maintenanceMode"]["enabled"] is False
    assert requests.get(service["serviceDetails"]["url"] + "/health", timeout=10).status_code == 200

    second = run_playbook("playbooks/recover.yml", extra)
    assert second.rc == 0, second.output[-4000:]
    assert second.recap()["changed"] == 0
    assert "conversion needed: no" in second.output
    assert "nothing to rotate: no leaked user left" in second.output

    secrets = (psycopg2.extensions.parse_dsn(environment["recovery_database_url"])["password"],
               psycopg2.extensions.parse_dsn(new_url)["password"], environment["render_api_key"])
    assert_verify_passes_then_names_new_drift(environment, extra, reports, (broken, first, second), secrets)


def _maintenance_enabled(environment) -> bool:
    return api(environment, f"/services/{SERVICE}")["serviceDetails"]["maintenanceMode"]["enabled"]


def _latest(tmp_path, name: str) -> str:
    """The text of the newest report of that name."""
    path = max(glob.glob(str(tmp_path / "reports" / "**" / name), recursive=True), key=os.path.getmtime)
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _index_and_fk_state(url) -> tuple[set, set]:
    """(indexes with their validity, FKs with their validity) of the public schema."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT indexrelid::regclass::text, indisvalid FROM pg_index i JOIN pg_class c "
                    "ON c.oid = i.indexrelid WHERE c.relnamespace = 'public'::regnamespace")
        indexes = set(cur.fetchall())
        cur.execute("SELECT conrelid::regclass::text, conname, convalidated FROM pg_constraint "
                    "WHERE contype = 'f' AND connamespace = 'public'::regnamespace")
        return indexes, set(cur.fetchall())


def _kill_one_index_build(url, killed: list, stop: threading.Event) -> None:
    """Fault injection after COMMIT: a session holding a snapshot makes every
    CREATE INDEX CONCURRENTLY wait for it at its end; the first one seen waiting
    is terminated (its index is left INVALID), then the snapshot is released."""
    blocker = psycopg2.connect(url)
    blocker.set_session(isolation_level="REPEATABLE READ")
    with blocker.cursor() as cur:
        cur.execute("SELECT 1")  # the snapshot the builds wait for
    watcher = psycopg2.connect(url)
    watcher.autocommit = True
    try:
        while not stop.is_set() and not killed:
            with watcher.cursor() as cur:
                cur.execute("SELECT pid, query FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%%' "
                            "AND wait_event = 'virtualxid'")
                row = cur.fetchone()
                if row:
                    cur.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                    killed.append(row[1])
            time.sleep(0.05)
    finally:
        blocker.close()
        watcher.close()


def test_work_after_commit_failing_keeps_maintenance_on_and_a_rerun_finishes_it(environment, tmp_path):
    """The defaults build secondary indexes and validate FKs after COMMIT: until
    that work is done the app must not run. A build killed after COMMIT fails the
    role, maintenance mode stays on, the run report says so, and the next
    recover.yml finishes the steps left before the app is back."""
    extra = recovery_vars(environment, tmp_path)
    url = environment["recovery_database_url"]
    indexes_before, fks_before = _index_and_fk_state(url)  # their validity must come back exactly
    killed, stop = [], threading.Event()
    fault = threading.Thread(target=_kill_one_index_build, args=(url, killed, stop), daemon=True)
    fault.start()
    try:
        first = run_playbook("playbooks/recover.yml", extra)
    finally:
        stop.set()
        fault.join(timeout=30)
    assert killed, "no index build was caught waiting"
    assert first.rc != 0, first.output[-3000:]
    assert "converted and committed, but after commit" in first.output, first.output[-6000:]
    assert _maintenance_enabled(environment) is True  # the app is not let back in without its indexes
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM key_conversion.pending_steps")
        assert cur.fetchone()[0] > 0  # the unfinished steps are written down
    report = _latest(tmp_path, "run-report.md")
    assert "a step after its commit failed" in report and "Maintenance mode is still ON" in report

    second = run_playbook("playbooks/recover.yml", extra)
    assert second.rc == 0, second.output[-4000:]
    assert "conversion needed: yes" in second.output  # the unfinished steps are conversion work
    findings = _latest(tmp_path, "findings.md")
    assert "steps an earlier conversion left for after its commit" in findings
    assert "left unfinished by an earlier run: 0 steps" not in second.output
    assert _maintenance_enabled(environment) is False
    indexes_after, fks_after = _index_and_fk_state(url)
    # Every index and FK there before is back (the deploy's migrations add more), valid as before.
    assert {name for name, _ in indexes_before} <= {name for name, _ in indexes_after}
    assert all(valid for _, valid in indexes_after)
    assert {(n, v) for _, n, v in fks_before} <= {(n, v) for _, n, v in fks_after}
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regnamespace('key_conversion')")
        assert cur.fetchone()[0] is None  # the list is gone once finished


def test_a_rerun_after_a_failed_deploy_resumes_then_verify_finds_no_drift(environment, tmp_path):
    """Five 503s on the deploy's POST stop the first run after the conversion and the alembic
    reset; the re-run the report asks for must deploy (the migrations are pending), not say
    "Nothing to do", and verify.yml then passes."""
    extra = recovery_vars(environment, tmp_path) | {
        "verify_health_delay": 1,
        # No leaked users: the rotation's own deploy must not hide a skipped recovery deploy.
        "credential_rotation_leaked_users": [],
    }
    root = environment["render_api_url"].rsplit("/v1", 1)[0]
    requests.post(f"{root}/__sim__/faults", timeout=10,
                  headers={"Authorization": f"Bearer {environment['render_api_key']}"},
                  json={"operation": "POST /services/{serviceId}/deploys",
                        "faults": [{"status": 503, "body": {"message": "simulated outage"}}] * 5}).raise_for_status()

    failed = run_playbook("playbooks/recover.yml", extra)
    assert failed.rc != 0
    assert "recovery failed at step deploy" in failed.output, failed.output[-4000:]

    resumed = run_playbook("playbooks/recover.yml", extra)
    assert resumed.rc == 0, resumed.output[-4000:]
    assert ("recovery state: the schema is converted: yes; alembic_version holds the head revision: no; "
            "the newest deploy is live: no -> resume at alembic_version and the deploy") in resumed.output
    assert "Nothing to do" not in resumed.output and "is live" in resumed.output
    assert "Recovered: this run resumed where an earlier one stopped" in resumed.output
    with psycopg2.connect(environment["recovery_database_url"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT version_num FROM alembic_version")  # the deploy's pre-deploy migrated
        assert cur.fetchall() == [("b354d12d1e7d",)]

    verified = run_playbook("playbooks/verify.yml", extra)
    assert verified.rc == 0, verified.output[-4000:]
    assert "DRIFT" not in verified.output
    assert "alembic_version: ok: b354d12d1e7d: the true revision and head" in verified.output
