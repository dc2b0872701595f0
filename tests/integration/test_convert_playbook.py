"""convert.yml and alembic_reset.yml as an operator runs them, on the broken fixture,
ending with the app's real `alembic upgrade head` succeeding."""

import glob
import json
import os
import stat
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from tests.alembic_runner import alembic
from tests.db_fingerprint import fingerprint
from tests.playbook_runner import run_playbook

VERSIONS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "demoapp", "migrations", "versions")


def password_of(url):
    return psycopg2.extensions.parse_dsn(url)["password"]


@pytest.fixture
def extra(tmp_path, broken_db):
    return {"recovery_database_url": broken_db, "convert_keys_report_dir": str(tmp_path / "reports"),
            "investigate_alembic_versions_dir": VERSIONS_DIR,
            "convert_keys_backup_dir": str(tmp_path / "backups"), "backup_dir": str(tmp_path / "backups"),
            # the gate has its own tests below
            "convert_keys_require_backup": False}


def test_gate_refuses_without_a_verified_backup_then_passes_with_one(broken_db, extra):
    gated = {**extra, "convert_keys_require_backup": True}
    before = fingerprint(broken_db)
    refused = run_playbook("playbooks/convert.yml", gated)
    assert refused.rc != 0
    # The refusal names the inventory this run used, never inventories/<host name>.
    inventory = refused.argv[refused.argv.index("-i") + 1]
    assert f"ansible-playbook playbooks/backup.yml -i {inventory}" in refused.output
    assert "inventories/test-env" not in refused.output
    assert fingerprint(broken_db) == before

    backed_up = run_playbook("playbooks/backup.yml", gated)
    assert backed_up.rc == 0, backed_up.output[-3000:]
    converted = run_playbook("playbooks/convert.yml", gated)
    assert converted.rc == 0, converted.output[-3000:]
    assert "backup gate passed" in converted.output


def test_check_mode_plans_and_changes_nothing(broken_db, extra):
    before = fingerprint(broken_db)
    result = run_playbook("playbooks/convert.yml", extra, check=True, diff=True)
    assert result.rc == 0, result.output[-3000:]
    assert result.recap()["changed"] == 1  # the plan stands for the change under --check
    assert "public.users.id: uuid -> varchar(36)" in result.output
    assert fingerprint(broken_db) == before


def test_recovery_then_alembic_upgrade_head_succeeds(broken_db, extra, tmp_path):
    assert "incompatible types" in alembic(broken_db, "upgrade", "head").stderr
    before = fingerprint(broken_db)

    converted = run_playbook("playbooks/convert.yml", extra, verbosity=3)
    assert converted.rc == 0, converted.output[-3000:]
    assert password_of(broken_db) not in converted.output
    report = Path(glob.glob(str(tmp_path / "reports" / "test-env" / "*" / "conversion.json"))[0])
    result = json.loads(report.read_text())
    assert result["fk_count_before"] == result["fk_count_after"] == 100
    assert result["timings"]["exclusive_lock"] > 0
    assert password_of(broken_db) not in report.read_text()
    progress = report.parent / "conversion.progress.log"
    assert "rewriting 1/" in progress.read_text()
    assert stat.S_IMODE(progress.stat().st_mode) == stat.S_IMODE(report.stat().st_mode) == 0o600

    after = fingerprint(broken_db)
    assert after["content"] == before["content"]
    assert {t for c, t in after["types"].items() if c.endswith((".id", "_id"))} <= {
        "character varying(36)", "bigint", "integer", "uuid"}
    assert after["types"]["public.users.id"] == "character varying(36)"

    again = run_playbook("playbooks/convert.yml", extra)
    assert again.rc == 0 and again.recap()["changed"] == 0

    reset = run_playbook("playbooks/alembic_reset.yml", extra, diff=True)
    assert reset.rc == 0, reset.output[-3000:]
    assert "f867c7e3d51c -> ba1a5bcdb110" in reset.output
    assert run_playbook("playbooks/alembic_reset.yml", extra).recap()["changed"] == 0

    upgraded = alembic(broken_db, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    with psycopg2.connect(broken_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT version_num FROM alembic_version")
        assert cur.fetchall() == [("b354d12d1e7d",)]


def test_alembic_reset_refuses_a_wrong_guard(broken_db, extra):
    result = run_playbook("playbooks/alembic_reset.yml",
                          {**extra, "alembic_reset_revision": "f867c7e3d51c"})
    assert result.rc != 0
    assert "revision f867c7e3d51c was asked for, but the schema is at ba1a5bcdb110" in result.output
    with psycopg2.connect(broken_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT version_num FROM alembic_version")
        assert cur.fetchall() == [("f867c7e3d51c",)]


@pytest.mark.parametrize("bad, message", [
    ({"convert_keys_keys": ["users.id"]}, "schema.table.column"),
    ({"convert_keys_scope": "everything"}, "convert_keys_scope"),
    ({"convert_keys_lock_timeout": 0}, "timeouts positive"),
    ({"recovery_database_url": "postgresql://CHANGE_ME:CHANGE_ME@h/db"}, "CHANGE_ME"),
])
def test_convert_rejects_bad_input_before_anything(broken_db, extra, bad, message):
    before = fingerprint(broken_db)
    result = run_playbook("playbooks/convert.yml", {**extra, **bad})
    assert result.rc != 0
    assert message in result.output
    assert fingerprint(broken_db) == before


def test_a_failed_conversion_stops_the_play_with_its_reason(broken_db, extra):
    """A session holding a lock past every retry: the role fails with the module's message
    (naming the blocker), writes its report, and nothing changed."""
    before = fingerprint(broken_db)
    blocker = psycopg2.connect(broken_db)
    with blocker.cursor() as cur:
        cur.execute("SELECT count(*) FROM users")
    try:
        result = run_playbook("playbooks/convert.yml", {**extra, "convert_keys_lock_timeout": 50,
                                                        "convert_keys_lock_retries": 1,
                                                        "convert_keys_lock_retry_delay": 0.1})
    finally:
        blocker.close()
    assert result.rc != 0
    assert "could not lock" in result.output and "SELECT count(*) FROM users" in result.output
    assert "Stop if the conversion failed" in result.output
    assert fingerprint(broken_db) == before


def _with_password(url, password):
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{password}@{parts.hostname}:{parts.port}"))


@pytest.mark.parametrize("playbook, bad, reason", [
    ("convert.yml", {"convert_keys_keys": ["public.no_such_table.id"]}, "public.no_such_table.id"),
    ("convert.yml", {"convert_keys_source_type": "bogus_type"}, "bogus_type"),
    ("convert.yml", {"recovery_database_url": "wrong-password"}, "password rejected for"),
    ("convert.yml", {"recovery_database_url": "closed-port"}, "database server unreachable at 127.0.0.1:1"),
    ("convert.yml", {"recovery_database_url": "notaurl"}, "database URL must start with postgresql://"),
    ("alembic_reset.yml", {"recovery_database_url": "wrong-password"}, "password rejected for"),
    ("alembic_reset.yml", {"recovery_database_url": "notaurl"}, "database URL must start with postgresql://"),
    ("alembic_reset.yml", {"alembic_reset_revision": "f867c7e3d51c"}, "revision f867c7e3d51c was asked for"),
])
def test_every_refusal_says_why_at_vvv_and_never_the_password(broken_db, extra, playbook, bad, reason):
    """The tasks that hold the URL are no_log; a refusal still prints its reason, never a secret."""
    password = password_of(broken_db)
    wrong = "Wr0ngPassw0rd" + password[-6:]
    urls = {"wrong-password": _with_password(broken_db, wrong),
            "closed-port": broken_db.replace(f":{urlsplit(broken_db).port}/", ":1/"),
            "notaurl": f"notaurl-{password}"}
    bad = {k: urls.get(v, v) if isinstance(v, str) else v for k, v in bad.items()}
    before = fingerprint(broken_db)
    result = run_playbook(f"playbooks/{playbook}", {**extra, **bad}, verbosity=3)
    assert result.rc != 0
    # In the failed task's result as the callback prints it (stdout, the log, a JSON callback),
    # not only in ansible-core's own error line on stderr, and never "censored".
    failure = result.output.rsplit("fatal: [test-env]: FAILED! =>", 1)[-1].split("PLAY RECAP", 1)[0]
    assert reason in failure and "censored" not in failure, result.output[-3000:]
    assert password not in result.output and wrong not in result.output
    assert fingerprint(broken_db) == before
