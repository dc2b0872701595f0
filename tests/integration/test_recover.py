"""recover.yml end to end, as `make demo` runs it: a Render-like environment of its
own (cluster with the broken fixture, Render simulator), the whole recovery, then a
second run that changes nothing. No secret may appear in the output at -vvv."""

import os
import subprocess
import sys

import psycopg2
import pytest
import requests

from tests.playbook_runner import ROOT, run_playbook

VERSIONS_DIR = os.path.join(ROOT, "demoapp", "migrations", "versions")
SERVICE = "srv-d0simulatedapi00000"


LEAKED = ["demo_app_2024", "demo_app_2025"]


def api(environment, path):
    return requests.get(f"{environment['render_api_url']}{path}", timeout=10,
                        headers={"Authorization": f"Bearer {environment['render_api_key']}"}).json()


def database_url(environment):
    """The service's DATABASE_URL (the default user's), reachable from here."""
    url = api(environment, f"/services/{SERVICE}/env-vars/DATABASE_URL")["value"]
    return url.replace("@localhost:", "@127.0.0.1:")


@pytest.fixture
def environment(tmp_path):
    state = tmp_path / "localenv"
    subprocess.run([sys.executable, "-m", "localenv", "--dir", str(state), "up"], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    try:
        yield {name: (state / name).read_text().strip()
               for name in ("recovery_database_url", "render_api_url", "render_api_key")}
    finally:
        subprocess.run([sys.executable, "-m", "localenv", "--dir", str(state), "down"], cwd=ROOT,
                       capture_output=True, timeout=120)


def test_recover_the_broken_environment_then_nothing_to_do(environment, tmp_path):
    extra = {
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
    leaked_url = database_url(environment)
    with psycopg2.connect(leaked_url, connect_timeout=5):
        pass  # the leaked default user's password works before the run
    first = run_playbook("playbooks/recover.yml", extra, verbosity=3)
    assert first.rc == 0, first.output[-4000:]
    for secret in (psycopg2.extensions.parse_dsn(environment["recovery_database_url"])["password"],
                   environment["render_api_key"]):
        assert secret not in first.output
    for step in ("conversion needed: yes", "Render export exp-", "backup gate passed", "converted 86 columns",
                 "alembic_version: f867c7e3d51c -> ba1a5bcdb110", "is live", "health 200",
                 "rotate: leaked users demo_app_2024, demo_app_2025 -> new user demo_app_"):
        assert step in first.output, step

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


def test_a_rerun_after_a_failed_deploy_resumes_then_verify_finds_no_drift(environment, tmp_path):
    """Five 503s on the deploy's POST stop the first run after the conversion and the alembic
    reset; the re-run the report asks for must deploy (the migrations are pending), not say
    "Nothing to do", and verify.yml then passes."""
    reports = tmp_path / "reports"
    extra = {
        "recovery_environment": "local",
        "recovery_database_url": environment["recovery_database_url"],
        "render_api_base_url": environment["render_api_url"],
        "render_api_key": environment["render_api_key"],
        "render_service_id": SERVICE,
        "render_postgres_id": "dpg-d0simulateddb000000-a",
        "investigate_alembic_versions_dir": VERSIONS_DIR,
        "investigate_report_dir": str(reports),
        "convert_keys_report_dir": str(reports),
        "convert_keys_backup_dir": str(tmp_path / "backups"),
        "backup_dir": str(tmp_path / "backups"),
        "run_report_health_delay": 1,
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
