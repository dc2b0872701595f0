"""The online conversion (mode online) on a real server, as the non-superuser
owner: the same result as the offline mode, the app writing throughout, check
mode planning the three phases, abort, and a re-run after an interrupted expand."""

import os

import psycopg2
import pytest
from ansible.module_utils.key_conversion_online_catalog import shadow_leftovers
from ansible.module_utils.key_conversion_online_run import abort_online, convert_online, plan_online
from ansible.module_utils.key_conversion_plan import ConversionRequest
from ansible.module_utils.key_conversion_run import ConversionError, RunOptions, convert

from tests.alembic_runner import alembic
from tests.db_connections import dbname
from tests.db_fingerprint import fingerprint
from tests.faults.app_writer import AppWriter
from tests.playbook_runner import run_playbook

VERSIONS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "demoapp", "migrations", "versions")


def _options(**extra):
    return RunOptions(**({"lock_timeout_ms": 2000, "lock_retries": 5, "retry_base_seconds": 0.1} | extra))


def _online(url, *, batch_rows=500, allow_rewrite=False, **options):
    conn = psycopg2.connect(url)
    try:
        return convert_online(conn, ConversionRequest(), _options(**options), batch_rows=batch_rows,
                              pause_seconds=0, allow_rewrite=allow_rewrite)
    finally:
        conn.close()


def _offline(url):
    conn = psycopg2.connect(url)
    try:
        return convert(conn, ConversionRequest(), _options())
    finally:
        conn.close()


@pytest.fixture
def twins(make_database, broken_template):
    return make_database(template=broken_template), make_database(template=broken_template)


def test_online_gives_the_offline_result_on_the_production_fixture(twins):
    offline_url, online_url = twins
    before = fingerprint(online_url, column_order=False)
    conn = psycopg2.connect(online_url)
    planned = plan_online(conn, ConversionRequest(), allow_rewrite=False)["plan"]
    conn.close()
    assert fingerprint(online_url, column_order=False) == before  # check mode changed nothing
    summary = planned.summary()
    assert not summary["refusals"], summary["refusals"]
    assert summary["phases"]["expand"]["tables"] and summary["phases"]["swap"]["sql"]
    assert summary["phases"]["contract"]["sql"]

    _offline(offline_url)
    outcome = _online(online_url)
    assert outcome["changed"] and not outcome["post_commit_errors"], outcome["post_commit_errors"]
    assert outcome["timings"]["exclusive_lock"] < 2
    assert fingerprint(online_url, column_order=False) == fingerprint(offline_url, column_order=False)
    conn = psycopg2.connect(online_url)
    assert not shadow_leftovers(conn, ["public"])
    conn.close()
    again = _online(online_url)
    assert not again["changed"]


def test_app_writes_throughout_and_none_is_lost(broken_db, tmp_path):
    writer = AppWriter(broken_db, str(tmp_path / "writes.jsonl"))
    try:
        outcome = _online(broken_db, batch_rows=200)
    finally:
        writer.stop()
    assert outcome["changed"]
    assert writer.errors == []
    assert writer.committed
    with psycopg2.connect(broken_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM users WHERE id = ANY(%s)", ([w["user"] for w in writer.committed],))
        assert cur.fetchone()[0] == len(writer.committed)
        cur.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = 'users'::regclass AND attname = 'id'")
        assert cur.fetchone()[0] == "character varying(36)"
    print(f"online with a writer: {len(writer.committed)} writes, longest "
          f"{max(w['seconds'] for w in writer.committed)} s, lock {outcome['timings']['exclusive_lock']} s")


def test_abort_removes_an_unfinished_expand_and_a_rerun_converts(broken_db):
    before = fingerprint(broken_db, column_order=False)
    # An expand that stops half-way: another session holds a lock on users.
    blocker = psycopg2.connect(broken_db)
    with blocker.cursor() as cur:
        cur.execute("LOCK TABLE users IN ACCESS SHARE MODE")
    with pytest.raises(ConversionError, match="expand stopped, the app still works on the old columns"):
        _online(broken_db, lock_retries=0)
    blocker.rollback()
    blocker.close()
    conn = psycopg2.connect(broken_db)
    assert shadow_leftovers(conn, ["public"])
    conn.rollback()
    aborted = abort_online(conn, _options(), ["public"], lambda message: None)
    assert aborted["changed"]
    assert not shadow_leftovers(conn, ["public"])
    conn.close()
    assert fingerprint(broken_db, column_order=False) == before
    assert _online(broken_db)["changed"]


def test_playbook_online_mode_plans_three_phases_then_converts_and_alembic_reaches_head(broken_db, tmp_path):
    extra = {"recovery_database_url": broken_db, "convert_keys_report_dir": str(tmp_path / "reports"),
             "investigate_alembic_versions_dir": VERSIONS_DIR, "convert_keys_require_backup": False,
             "convert_keys_mode": "online"}
    before = fingerprint(broken_db)
    planned = run_playbook("playbooks/convert.yml", extra, check=True, verbosity=1)
    assert planned.rc == 0, planned.output[-3000:]
    assert "mode: online; expand 48 tables" in planned.output
    assert '"contract"' in planned.output and '"swap"' in planned.output
    assert fingerprint(broken_db) == before

    converted = run_playbook("playbooks/convert.yml", extra, verbosity=3)
    assert converted.rc == 0, converted.output[-3000:]
    assert "(online)" in converted.output
    assert psycopg2.extensions.parse_dsn(broken_db)["password"] not in converted.output
    again = run_playbook("playbooks/convert.yml", extra)
    assert again.rc == 0 and again.recap()["changed"] == 0, again.output[-3000:]
    reset = run_playbook("playbooks/alembic_reset.yml", extra)
    assert reset.rc == 0, reset.output[-3000:]
    upgraded = alembic(broken_db, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr[-2000:]


def test_abort_needs_online_mode_and_changes_nothing_without_it(broken_db, tmp_path):
    refused = run_playbook("playbooks/convert.yml", {"recovery_database_url": broken_db,
                                                     "convert_keys_online_abort": True,
                                                     "convert_keys_require_backup": False})
    assert refused.rc != 0
    assert "convert_keys_online_abort only with convert_keys_mode online" in refused.output


def test_a_column_named_like_a_shadow_is_refused_by_name_before_any_change(broken_db):
    with psycopg2.connect(broken_db) as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE users ADD COLUMN id__kc_new text")
    before = fingerprint(broken_db)
    conn = psycopg2.connect(broken_db)
    planned = plan_online(conn, ConversionRequest(), allow_rewrite=False)["plan"]
    assert any("already has a column id__kc_new that this tool did not add" in r for r in planned.refusals)
    with pytest.raises(ConversionError, match="refused before any change"):
        convert_online(conn, ConversionRequest(), _options(), batch_rows=500, pause_seconds=0, allow_rewrite=False)
    conn.close()
    assert fingerprint(broken_db) == before


def test_kitchen_sink_online_gives_the_offline_result(make_database):
    from tests.integration.kitchen_sink import kitchen_sink_sql

    template = make_database()
    with psycopg2.connect(template) as conn, conn.cursor() as cur:
        cur.execute(kitchen_sink_sql("PUBLIC"))
    conn.close()
    urls = [make_database(template=dbname(template)), make_database(template=dbname(template))]
    conn = psycopg2.connect(urls[1])
    planned = plan_online(conn, ConversionRequest(), allow_rewrite=False)["plan"]
    conn.close()
    print("cannot be online:", planned.summary()["cannot_be_online"])
    _offline(urls[0])
    outcome = _online(urls[1], allow_rewrite=True)
    assert not outcome["post_commit_errors"]
    assert fingerprint(urls[1], column_order=False) == fingerprint(urls[0], column_order=False)
