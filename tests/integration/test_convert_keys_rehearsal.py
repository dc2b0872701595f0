"""The conversion rehearsed on a scratch restore of a verified backup: the same
plan runs on a copy first, the live database is only read, a run that would fail
fails there, and a backup of another schema is refused as proof of nothing."""

import re

import psycopg2
import pytest
from ansible.module_utils.key_conversion_plan import ConversionRequest
from ansible.module_utils.key_conversion_rehearsal import RehearsalError, plan_difference, rehearse
from ansible.module_utils.key_conversion_run import RunOptions
from ansible.module_utils.pg_backup_dump import take_backup

from tests.db_connections import app_conn
from tests.db_fingerprint import fingerprint
from tests.playbook_runner import run_playbook


@pytest.fixture
def live(broken_db):
    return broken_db


@pytest.fixture
def backup(live, tmp_path):
    done = take_backup({"database_url": live, "connect_timeout": 10}, backup_dir=str(tmp_path), label="env",
                       backup_id="r1")
    return done["path"]


@pytest.fixture
def scratch(pg_cluster):
    return {"database_url": pg_cluster.admin_url(), "connect_timeout": 10}


def _scratch_databases(scratch) -> list[str]:
    with psycopg2.connect(scratch["database_url"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'rkr\\_rehearse\\_%'")
        names = [row[0] for row in cur.fetchall()]
    conn.close()
    return names


def test_the_same_plan_runs_on_a_copy_and_the_live_database_is_only_read(live, backup, scratch):
    before = fingerprint(live, extended=True)
    conn = app_conn(live)
    try:
        result = rehearse(conn, backup, scratch, ConversionRequest(), options=RunOptions(retry_base_seconds=0.1))
    finally:
        conn.close()
    assert result["columns_converted"] == len(result["plan"]["columns"]) > 0
    assert result["fk_count_after"] == result["fk_count_before"] > 0
    assert result["seconds"] > 0 and "exclusive_lock" in result["timings"]
    assert result["live_locale"] and result["scratch_locale"]
    assert fingerprint(live, extended=True) == before
    assert _scratch_databases(scratch) == []


def test_a_run_that_would_fail_fails_on_the_copy_and_names_why(live, backup, scratch):
    before = fingerprint(live, extended=True)
    conn = app_conn(live)
    try:
        # Every statement may run 1 ms: the rewrite cannot finish, here or live.
        with pytest.raises(RehearsalError, match=r"real run would fail the same way: .*statement timeout"):
            rehearse(conn, backup, scratch, ConversionRequest(),
                     options=RunOptions(statement_timeout_ms=1, lock_retries=0))
    finally:
        conn.close()
    assert fingerprint(live, extended=True) == before
    assert _scratch_databases(scratch) == []


def test_a_backup_of_another_schema_proves_nothing(live, backup, scratch):
    with psycopg2.connect(live) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE late_links (id uuid PRIMARY KEY, user_id uuid REFERENCES users(id))")
    conn.close()
    conn = app_conn(live)
    try:
        with pytest.raises(RehearsalError, match=r"another plan than the live database.*late_links"):
            rehearse(conn, backup, scratch, ConversionRequest(), options=RunOptions())
    finally:
        conn.close()
    assert _scratch_databases(scratch) == []


def test_plan_difference_names_what_only_one_side_has():
    live = {"columns": ["public.a.id", "public.b.a_id"], "foreign_keys": ["public.b.fk"]}
    backup = {"columns": ["public.a.id"], "foreign_keys": ["public.b.fk"]}
    assert plan_difference(live, backup) == ["columns (only live: public.b.a_id)"]
    assert plan_difference(live, live) == []


def test_convert_playbook_rehearses_first_and_says_how_long_it_took(broken_db, tmp_path, scratch):
    extra = {"recovery_database_url": broken_db, "convert_keys_report_dir": str(tmp_path / "reports"),
             "convert_keys_backup_dir": str(tmp_path / "backups"),
             "backup_dir": str(tmp_path / "backups"), "backup_scratch_url": scratch["database_url"],
             "convert_keys_rehearse": True}
    assert run_playbook("playbooks/backup.yml", extra).rc == 0
    before = fingerprint(broken_db)
    planned = run_playbook("playbooks/convert.yml", extra, check=True)
    assert planned.rc == 0, planned.output[-3000:]
    assert "the conversion would first be rehearsed on a scratch restore of" in planned.output
    assert fingerprint(broken_db) == before

    # Without a scratch URL the role starts (and removes) a throwaway cluster, whose
    # superuser URL never shows, even at -vvv.
    converted = run_playbook("playbooks/convert.yml", extra, verbosity=3)
    assert converted.rc == 0, converted.output[-3000:]
    assert re.search(r"rehearsal passed on a scratch restore of .*: the conversion took [0-9.]+ s there",
                     converted.output)
    assert psycopg2.extensions.parse_dsn(broken_db)["password"] not in converted.output
    assert "postgresql://" not in converted.output.replace("postgresql://***", "")
    assert fingerprint(broken_db)["types"]["public.users.id"] == "character varying(36)"
    assert _scratch_databases(scratch) == []


def test_a_scratch_url_on_the_live_server_is_refused_before_anything(broken_db, tmp_path):
    extra = {"recovery_database_url": broken_db, "convert_keys_report_dir": str(tmp_path / "reports"),
             "convert_keys_rehearse": True, "convert_keys_rehearse_scratch_url": broken_db,
             "convert_keys_require_backup": False, "convert_keys_rehearse_backup_path": str(tmp_path)}
    before = fingerprint(broken_db)
    refused = run_playbook("playbooks/convert.yml", extra)
    assert refused.rc != 0
    assert "a scratch server other than the live database's" in refused.output
    assert fingerprint(broken_db) == before
