"""The online conversion (mode online) on a real server, as the non-superuser
owner: the same result as the offline mode, the app writing throughout, check
mode planning the three phases, abort, and a re-run after an interrupted expand."""

import os
import threading

import psycopg2
import pytest
from ansible.module_utils.key_conversion_online_catalog import shadow_leftovers
from ansible.module_utils.key_conversion_online_run import abort_online, convert_online, plan_online
from ansible.module_utils.key_conversion_plan import ConversionRequest
from ansible.module_utils.key_conversion_run import ConversionError, RunOptions, convert, plan_only

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


def _twins(make_database, schema: str) -> list[str]:
    """Two databases with the same schema and rows: one for each mode."""
    template = make_database()
    with psycopg2.connect(template) as conn, conn.cursor() as cur:
        cur.execute(schema)
    conn.close()
    return [make_database(template=dbname(template)) for _ in range(2)]


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
    # Two connections expand two tables at a time, as the module runs it.
    outcome = _online(online_url, connect=lambda: psycopg2.connect(online_url))
    assert outcome["changed"] and not outcome["post_commit_errors"], outcome["post_commit_errors"]
    assert outcome["timings"]["exclusive_lock"] < 2
    assert fingerprint(online_url, column_order=False) == fingerprint(offline_url, column_order=False)
    conn = psycopg2.connect(online_url)
    assert not shadow_leftovers(conn, ["public"])
    conn.close()
    again = _online(online_url)
    assert not again["changed"]


def test_app_writes_throughout_and_none_is_lost(broken_db, tmp_path):
    """Inserts, updates and deletes through expand, swap and contract: every committed write
    is there (each document holds its last committed body, each deleted user is gone), and
    the app saw no error."""
    writer = AppWriter(broken_db, str(tmp_path / "writes.jsonl"), deletes=True)
    try:
        outcome = _online(broken_db, batch_rows=200, connect=lambda: psycopg2.connect(broken_db))
    finally:
        writer.stop()
    assert outcome["changed"]
    assert writer.errors == []
    assert writer.committed and writer.deleted
    kept = [w["user"] for w in writer.committed if w["user"] not in set(writer.deleted)]
    last_body = {w["document"]: w["body"] for w in writer.committed}
    with psycopg2.connect(broken_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM users WHERE id = ANY(%s)", (kept,))
        assert cur.fetchone()[0] == len(kept)
        cur.execute("SELECT count(*) FROM users WHERE id = ANY(%s)", (writer.deleted,))
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT id, body FROM documents WHERE id = ANY(%s)", (list(last_body),))
        assert dict(cur.fetchall()) == last_body
        cur.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = 'users'::regclass AND attname = 'id'")
        assert cur.fetchone()[0] == "character varying(36)"
    print(f"online with a writer: {len(writer.committed)} writes ({len(writer.deleted)} deletes), longest "
          f"{max(w['seconds'] for w in writer.committed)} s, lock {outcome['timings']['exclusive_lock']} s")


def test_a_vacuum_holding_a_table_at_the_swap_is_waited_out_without_blocking_the_app(broken_db):
    """After a backfill every table is due for an autovacuum, which holds SHARE UPDATE
    EXCLUSIVE: a swap whose short lock gave up before deadlock_timeout would never get
    such a table. Here another session holds that lock on documents for 2.5 s when the
    swap starts: the swap waits behind it in its maintenance fence (a lock that blocks no
    write: the app updates documents meanwhile) and then locks at its first attempt."""
    holder, app_write, timers = psycopg2.connect(broken_db), {}, []

    def app_update():
        with psycopg2.connect(broken_db) as conn, conn.cursor() as cur:
            cur.execute("SET statement_timeout = '2s'")
            cur.execute("UPDATE documents SET title = title WHERE id = (SELECT id FROM documents LIMIT 1)")
            app_write["rows"] = cur.rowcount
        conn.close()

    def at_the_swap(message):
        if message.startswith("swap: locking") and not timers:
            with holder.cursor() as cur:
                cur.execute("LOCK TABLE documents IN SHARE UPDATE EXCLUSIVE MODE")  # as VACUUM does
            timers.extend([threading.Timer(1.0, app_update), threading.Timer(2.5, holder.rollback)])
            for timer in timers:
                timer.start()

    try:
        outcome = _online(broken_db, progress=at_the_swap)
    finally:
        for timer in timers:
            timer.join()
        holder.close()
    assert timers, "the swap never started"
    assert app_write == {"rows": 1}  # written while the swap waited for the lock
    assert outcome["changed"] and outcome["lock_attempts"] == []
    assert outcome["timings"]["lock_wait"] >= 2.0 and outcome["timings"]["exclusive_lock"] < 2.0


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
    # The offline mode will not convert under it.
    refusals = plan_only(conn, ConversionRequest())["plan"].refusals
    assert any("carries an unfinished online expand: finish it (mode online) or remove it (online_abort)" in r
               for r in refusals), refusals
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

    urls = _twins(make_database, kitchen_sink_sql("PUBLIC"))
    conn = psycopg2.connect(urls[1])
    planned = plan_online(conn, ConversionRequest(), allow_rewrite=False)["plan"]
    conn.close()
    # Only the partitioned table needs a rewrite; expression and partial indexes over a key are built after the swap.
    cannot = planned.summary()["cannot_be_online"]
    assert len(cannot) == 1 and cannot[0].startswith("table public.measurements cannot be converted online"), cannot
    later = {ix for t in planned.summary()["phases"]["expand"]["tables"] for ix in t["indexes_after_swap"]}
    assert {"public.users_id_text_idx", "public.users_org_idx"} <= later, later
    _offline(urls[0])
    outcome = _online(urls[1], allow_rewrite=True)
    assert not outcome["post_commit_errors"]
    assert fingerprint(urls[1], column_order=False) == fingerprint(urls[0], column_order=False)


def test_recover_online_keeps_the_app_serving_and_says_so(environment, tmp_path):
    """recover.yml with convert_keys_mode online: no maintenance mode at any point, the
    schema converted and migrated to head, the run report saying why maintenance was not
    used, and a second run changing nothing."""
    import json
    from glob import glob

    import requests

    from tests.integration.test_recover import SERVICE, api, recovery_vars

    extra = recovery_vars(environment, tmp_path) | {"convert_keys_mode": "online",
                                                    "credential_rotation_leaked_users": []}
    first = run_playbook("playbooks/recover.yml", extra)
    assert first.rc == 0, first.output[-4000:]
    assert "(online)" in first.output
    root = environment["render_api_url"].rsplit("/v1", 1)[0]
    journal = requests.get(f"{root}/__sim__/journal", timeout=10,
                           headers={"Authorization": f"Bearer {environment['render_api_key']}"}).json()
    assert [e for e in journal if e["method"] == "POST" and e["path"].endswith("/deploys")]
    assert not [e for e in journal if "maintenanceMode" in e["request_body"]]
    assert api(environment, f"/services/{SERVICE}")["serviceDetails"]["maintenanceMode"]["enabled"] is False
    with open(sorted(glob(str(tmp_path / "reports" / "*" / "*" / "run-report.json")))[-1], encoding="utf-8") as file:
        report = json.load(file)
    assert report["outcome"] == "succeeded"
    steps = {s["id"]: s for s in report["steps"]}
    assert steps["maintenance_on"]["status"] == "skipped"
    assert "online conversion" in steps["maintenance_on"]["detail"]
    assert steps["convert"]["status"] == steps["deploy"]["status"] == "done"
    with psycopg2.connect(environment["recovery_database_url"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT version_num FROM alembic_version")  # the deploy's pre-deploy migrated
        assert cur.fetchall() == [("b354d12d1e7d",)]
    second = run_playbook("playbooks/recover.yml", extra)
    assert second.rc == 0 and second.recap()["changed"] == 0, second.output[-3000:]


TRIGGERED_SCHEMA = """
CREATE TABLE parents (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), note text);
CREATE TABLE children (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                       parent_id uuid NOT NULL REFERENCES parents(id), body text,
                       CONSTRAINT children_not_nil CHECK (parent_id <> '00000000-0000-0000-0000-000000000000'));
ALTER TABLE children ADD CONSTRAINT children_left_unchecked CHECK (body <> 'x' OR parent_id IS NULL) NOT VALID;
CREATE INDEX children_parent_text ON children ((parent_id::text)) WHERE body IS NOT NULL;
COMMENT ON COLUMN children.parent_id IS 'the parent';
CREATE TABLE audit (what text, n int);
CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO audit VALUES ('row', 1); RETURN NEW; END $$;
CREATE FUNCTION audit_statement() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO audit VALUES ('statement', 1); RETURN NULL; END $$;
CREATE TRIGGER children_audit BEFORE UPDATE ON children FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER children_audit_statement AFTER UPDATE ON children FOR EACH STATEMENT EXECUTE FUNCTION audit_statement();
INSERT INTO parents (note) SELECT 'p' || g FROM generate_series(1, 50) g;
INSERT INTO children (parent_id, body) SELECT p.id, 'c' || g FROM parents p, generate_series(1, 40) g;
"""


def test_app_triggers_do_not_fire_for_the_backfill_and_not_valid_checks_stay_so(make_database):
    offline_url, online_url = _twins(make_database, TRIGGERED_SCHEMA)
    _offline(offline_url)
    outcome = _online(online_url, batch_rows=100)
    assert outcome["backfill"]["public.children"]["rows"] == 2000
    assert any("disables its UPDATE triggers (children_audit, children_audit_statement)" in note
               for note in outcome["plan"].notes)
    assert fingerprint(online_url, column_order=False) == fingerprint(offline_url, column_order=False)
    with psycopg2.connect(online_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM audit")
        assert cur.fetchone()[0] == 0  # the backfill fired none of the app's triggers
        cur.execute("SELECT convalidated FROM pg_constraint WHERE conname = 'children_left_unchecked'")
        assert cur.fetchone()[0] is False
        cur.execute("UPDATE children SET body = 'y' WHERE ctid = (SELECT min(ctid) FROM children)")
        cur.execute("SELECT count(*) FROM audit")
        assert cur.fetchone()[0] == 2  # and they fire again for the app


@pytest.mark.parametrize("category", ["literals", "domains"])
def test_targeted_fixtures_online_give_the_offline_result(category, make_database, make_role):
    """Sentinel uuid literals in checks, a partial and an expression index, a view, a policy,
    a trigger WHEN and a default (the trigger would refuse the backfill's UPDATE of the
    system post: the app's UPDATE triggers are off for each batch); domain-typed FK columns
    whose NOT NULL and default move onto the column."""
    from tests.integration.test_convert_keys_categories import DOMAIN_SQL, DOMAINS, LITERALS, SYSTEM

    if category == "literals":
        schema = LITERALS.format(key="uuid", system=SYSTEM, upper=SYSTEM.upper(), reader=make_role(member=True))
    else:
        schema = DOMAINS.format(domains=DOMAIN_SQL, key="uuid", user_ref="user_ref", request_ref="request_ref")
    offline_url, online_url = _twins(make_database, schema)
    _offline(offline_url)
    outcome = _online(online_url, batch_rows=2)
    assert not outcome["plan"].rewritten_tables and not outcome["post_commit_errors"]
    assert fingerprint(online_url, extended=True, column_order=False) == fingerprint(
        offline_url, extended=True, column_order=False)


def test_a_failed_concurrent_index_build_leaves_the_session_settings_as_they_were(make_database):
    """An index build runs with lock_timeout 0 and the build's maintenance_work_mem; when it
    fails, the connection goes back to the run's settings (it is used again, by the next
    table or the abort)."""
    from ansible.module_utils.key_conversion_online_backfill import run_outside_a_transaction

    conn = psycopg2.connect(make_database())
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (1)")
            cur.execute("SET lock_timeout = '1234ms'")
            cur.execute("SHOW maintenance_work_mem")
            memory_before = cur.fetchone()[0]
        conn.commit()
        with pytest.raises(psycopg2.errors.UniqueViolation):
            run_outside_a_transaction(conn, ["CREATE UNIQUE INDEX CONCURRENTLY t_id ON t (id)"], "77MB")
        assert conn.autocommit is False
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('lock_timeout'), current_setting('maintenance_work_mem')")
            # RESET goes back to the session's default (the server's), not the SET above.
            assert cur.fetchone() == ("0", memory_before)
    finally:
        conn.close()
