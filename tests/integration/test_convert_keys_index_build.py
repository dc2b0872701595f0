"""index_build=after_commit on a real server, as the non-superuser owner: the
secondary indexes leave the lock window and come back exactly; the work after
COMMIT is recorded durably, so a run that dies after COMMIT is finished by the
next one; the list is trusted only when nobody else can write to it."""

import threading

import psycopg2
import pytest
from ansible.module_utils import key_conversion_after_commit_list as pending
from ansible.module_utils import key_conversion_run
from ansible.module_utils.key_conversion_plan import ConversionRequest
from ansible.module_utils.key_conversion_run import ConversionError, RunOptions, convert, plan_only

from tests.db_connections import app_conn, dbname
from tests.db_fingerprint import fingerprint

SCHEMA = """
CREATE TABLE orgs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text, created date);
CREATE TABLE members (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), org_id uuid NOT NULL REFERENCES orgs(id),
                      email text, note text, CONSTRAINT members_email_key UNIQUE (email));
CREATE INDEX members_org_idx ON members (org_id);
COMMENT ON INDEX members_org_idx IS 'tenant lookups, it''s hot';
CREATE INDEX "Members By Email" ON members (lower(email)) WHERE note IS NULL;
CREATE INDEX members_org_desc ON members (org_id DESC NULLS LAST) INCLUDE (email);
CREATE INDEX members_org_hash ON members USING hash (org_id);
CREATE INDEX members_org_partial ON members (email) WHERE org_id IS NOT NULL;
CREATE INDEX members_id_text ON members ((id::text));
CREATE UNIQUE INDEX members_org_email ON members (org_id, email);
CREATE INDEX orgs_name_idx ON orgs (name);
CREATE INDEX orgs_created_idx ON orgs (created);
CLUSTER orgs USING orgs_created_idx;
CREATE TABLE events (id bigint, member_id uuid REFERENCES members(id), at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX events_member_idx ON events (member_id);
INSERT INTO orgs (name, created) SELECT 'org ' || g, date '2026-01-01' + g FROM generate_series(1, 30) g;
INSERT INTO members (org_id, email) SELECT o.id, o.name || '-' || g || '@example.com'
  FROM orgs o CROSS JOIN generate_series(1, 20) g;
INSERT INTO events SELECT g, m.id, date '2026-06-01' FROM members m, generate_series(1, 2) g;
"""
# Built after COMMIT: plain key columns (any direction, any AM with its default
# operator class), or expressions and predicates over columns that do not change.
DEFERRED = {"public.members_org_idx", 'public."Members By Email"', "public.members_org_desc",
            "public.members_org_hash", "public.orgs_name_idx"}
AFTER_COMMIT = ConversionRequest(fk_validation="after_commit", index_build="after_commit")


@pytest.fixture
def members_db(make_database):
    url = make_database()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(SCHEMA)
    return url


def _options(url, **extra):
    return RunOptions(connect=lambda: app_conn(url), after_commit_workers=2, **extra)


def _autocommit(url):
    """A session of its own, statement by statement (not `with conn:`, which opens a transaction)."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


def _pending_rows(url) -> int | None:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('key_conversion.pending_steps') IS NOT NULL")
        if not cur.fetchone()[0]:
            return None
        cur.execute("SELECT count(*) FROM key_conversion.pending_steps")
        return cur.fetchone()[0]


def _index_state(url, name) -> bool | None:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (name,))
        row = cur.fetchone()
        return row[0] if row else None


def test_secondary_indexes_leave_the_lock_window_and_come_back_exactly(members_db):
    before = fingerprint(members_db)
    conn = app_conn(members_db)
    planned = plan_only(conn, AFTER_COMMIT)["plan"]
    assert planned.refusals == []
    # Unique, clustered, partitioned-table indexes and those whose expression or
    # predicate reads a changing column stay inside the transaction.
    assert {ix["name"] for ix in planned.deferred_indexes} == DEFERRED
    outcome = convert(conn, AFTER_COMMIT, _options(members_db))
    assert outcome["post_commit_errors"] == []
    executed = outcome["executed_sql"]
    first_alter = next(n for n, s in enumerate(executed) if "ALTER COLUMN" in s)
    recorded = next(n for n, s in enumerate(executed) if s.startswith("-- ") and "recorded" in s)
    for name in DEFERRED:
        assert executed.index(f"DROP INDEX {name}") < first_alter
    builds = [n for n, s in enumerate(executed) if s.startswith("CREATE INDEX CONCURRENTLY IF NOT EXISTS")]
    assert len(builds) == len(DEFERRED) and min(builds) > recorded
    assert "COMMENT ON INDEX public.members_org_idx IS 'tenant lookups, it''s hot'" in executed
    # An expression index was dropped with its statistics: the whole table is analyzed.
    assert "ANALYZE public.members" in executed and any(s.startswith("ANALYZE public.orgs (") for s in executed)
    conn.close()

    after = fingerprint(members_db)
    assert after["content"] == before["content"]
    # Every index, constraint (validated again), comment and the CLUSTER mark as before.
    assert after["catalog"] == before["catalog"]
    assert {col for col in before["types"] if before["types"][col] != after["types"][col]} == {
        "public.orgs.id", "public.members.id", "public.members.org_id", "public.events.member_id",
        "public.events_2026.member_id"}
    assert _pending_rows(members_db) is None  # the list and its schema are gone

    again = convert(app_conn(members_db), AFTER_COMMIT, _options(members_db))
    assert again["changed"] is False and again["executed_sql"] == []


def test_a_run_that_dies_after_commit_is_finished_by_the_next(members_db, monkeypatch):
    before = fingerprint(members_db)

    def die(*args, **kwargs):
        raise RuntimeError("the process died right after COMMIT")

    with monkeypatch.context() as patched:
        patched.setattr(key_conversion_run, "run_after_commit", die)
        with pytest.raises(RuntimeError, match="died"):
            convert(app_conn(members_db), AFTER_COMMIT, _options(members_db))
    # Committed: the keys are converted, the indexes not yet built, the FKs not
    # yet validated, and all of that is written down.
    assert _pending_rows(members_db) > len(DEFERRED)
    assert _index_state(members_db, "members_org_idx") is None
    # A build that was interrupted leaves an INVALID index under the name.
    setup = _autocommit(members_db)
    with setup.cursor() as cur, pytest.raises(psycopg2.errors.UniqueViolation):
        cur.execute("CREATE UNIQUE INDEX CONCURRENTLY members_org_idx ON members (org_id)")
    setup.close()
    assert _index_state(members_db, "members_org_idx") is False

    conn = app_conn(members_db)
    planned = plan_only(conn, AFTER_COMMIT)["plan"]
    assert planned.columns == [] and len(planned.pending_after_commit) == _pending_rows(members_db)
    finished = convert(conn, AFTER_COMMIT, _options(members_db))
    assert finished["changed"] is True and finished["post_commit_errors"] == []
    assert finished["timings"]["exclusive_lock"] == 0.0  # finishing took no lock
    assert any(s.startswith("DROP INDEX CONCURRENTLY") and "members_org_idx" in s for s in finished["executed_sql"])
    after = fingerprint(members_db)
    assert after["catalog"] == before["catalog"] and after["content"] == before["content"]
    assert _pending_rows(members_db) is None
    assert convert(conn, AFTER_COMMIT, _options(members_db))["changed"] is False
    conn.close()


def test_a_list_others_may_write_to_is_refused_not_run(members_db, monkeypatch):
    with monkeypatch.context() as patched:
        patched.setattr(key_conversion_run, "run_after_commit",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("died")))
        with pytest.raises(RuntimeError):
            convert(app_conn(members_db), AFTER_COMMIT, _options(members_db))
    with psycopg2.connect(members_db) as setup, setup.cursor() as cur:
        cur.execute("GRANT INSERT ON key_conversion.pending_steps TO PUBLIC")
    conn = app_conn(members_db)
    assert any("may be written by PUBLIC" in r for r in plan_only(conn, AFTER_COMMIT)["plan"].refusals)
    with pytest.raises(ConversionError, match="may be written by PUBLIC"):
        convert(conn, AFTER_COMMIT, _options(members_db))
    assert _pending_rows(members_db) > 0  # nothing was run or removed
    conn.close()


def test_without_create_on_the_database_the_work_stays_inside_and_the_plan_says_so(members_db):
    """The after_commit levers are the defaults; a role that may not keep the
    list of work after COMMIT gets everything inside the transaction, never a refusal."""
    with psycopg2.connect(members_db) as setup, setup.cursor() as cur:
        cur.execute(f'REVOKE CREATE ON DATABASE "{dbname(members_db)}" FROM CURRENT_USER')
    before = fingerprint(members_db)
    conn = app_conn(members_db)
    for request in (ConversionRequest(), AFTER_COMMIT):
        plan = plan_only(conn, request)["plan"]
        assert plan.refusals == []
        assert plan.deferred_indexes == [] and plan.deferred_validations == [] and not plan.records_pending
        assert any("inside the transaction, not after COMMIT" in n and "CREATE on the database" in n
                   for n in plan.notes)
    outcome = convert(conn, ConversionRequest(), _options(members_db))
    assert outcome["changed"] and outcome["post_commit_errors"] == []
    assert not any("CONCURRENTLY" in s or "NOT VALID" in s for s in outcome["executed_sql"])
    assert _pending_rows(members_db) is None
    after = fingerprint(members_db)
    assert after["catalog"] == before["catalog"] and after["content"] == before["content"]
    conn.close()


def test_a_second_run_at_the_same_time_is_refused(members_db):
    holder = _autocommit(members_db)
    with holder.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (pending.ADVISORY_LOCK_KEY,))
    before = fingerprint(members_db)
    with pytest.raises(ConversionError, match="another key conversion is running"):
        convert(app_conn(members_db), ConversionRequest(), RunOptions())
    assert fingerprint(members_db) == before
    holder.close()
    assert convert(app_conn(members_db), ConversionRequest(), RunOptions())["changed"] is True


def test_reverse_direction_keeps_a_pattern_ops_index_inside(make_database):
    url = make_database()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("""
            CREATE TABLE a (id varchar(36) PRIMARY KEY);
            CREATE TABLE b (id bigint PRIMARY KEY, a_id varchar(36) REFERENCES a(id));
            CREATE INDEX b_a_pattern ON b (a_id varchar_pattern_ops);
            CREATE INDEX b_a_plain ON b (a_id);
            CREATE INDEX b_a_c ON b (a_id COLLATE "C");
            CREATE INDEX b_a_spgist ON b USING spgist (a_id);
            INSERT INTO a SELECT gen_random_uuid()::text FROM generate_series(1, 10);
            INSERT INTO b SELECT row_number() OVER (), id FROM a;
        """)
    request = ConversionRequest(source_type="varchar(36)", target_type="uuid", index_build="after_commit")
    conn = app_conn(url)
    plan = plan_only(conn, request)["plan"]
    # varchar_pattern_ops means nothing for uuid: the rewrite itself must face it, inside.
    assert [ix["name"] for ix in plan.deferred_indexes] == ["public.b_a_plain"]
    with pytest.raises(ConversionError, match="rolled back"):
        convert(conn, request, RunOptions())
    assert _pending_rows(url) is None
    conn.close()


def test_backends_of_a_dead_run_still_working_keep_the_next_run_out(members_db):
    straggler = _autocommit(members_db)
    with straggler.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock_shared(%s)", (pending.WORKER_LOCK_KEY,))
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    with pytest.raises(ConversionError, match=f"still working after its commit \\(pids {pid}\\)"):
        convert(app_conn(members_db), AFTER_COMMIT, _options(members_db))
    straggler.close()
    assert convert(app_conn(members_db), AFTER_COMMIT, _options(members_db))["post_commit_errors"] == []


def test_a_schema_of_that_name_owned_by_someone_else_keeps_the_work_inside(members_db, pg_cluster):
    with psycopg2.connect(pg_cluster.admin_url(dbname(members_db))) as admin, admin.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {pending.SCHEMA}")  # owned by the superuser
    conn = app_conn(members_db)
    for request in (AFTER_COMMIT, ConversionRequest()):  # the after_commit levers are the defaults
        plan = plan_only(conn, request)["plan"]
        assert plan.refusals == [] and any("owned by another role" in n for n in plan.notes)
        assert plan.deferred_indexes == [] and not plan.records_pending
    outcome = convert(conn, ConversionRequest(), RunOptions())
    assert outcome["changed"] is True and outcome["post_commit_errors"] == []
    assert not any("CONCURRENTLY" in s or "NOT VALID" in s for s in outcome["executed_sql"])
    conn.close()


def test_the_main_connection_lost_after_commit_is_reported_not_raised(members_db):
    """Committed is committed: a connection lost during the work after COMMIT
    gives a result naming the failed steps (the role fails on them and keeps
    maintenance on), never a crash that reads like a rollback; the next run finishes."""
    conn = app_conn(members_db)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        main_pid = cur.fetchone()[0]
    conn.rollback()
    killer = _autocommit(members_db)
    once = threading.Lock()  # the after-commit workers call progress from their own threads

    def progress(message):
        if not message.startswith("CREATE INDEX CONCURRENTLY"):
            return
        with once:
            if killer.closed:
                return
            with killer.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(%s)", (main_pid,))
            killer.close()

    outcome = convert(conn, AFTER_COMMIT, _options(members_db, progress=progress))
    assert killer.closed, "the work after COMMIT never started"
    assert outcome["changed"] is True and outcome["post_commit_errors"]
    assert _pending_rows(members_db) > 0
    finished = convert(app_conn(members_db), AFTER_COMMIT, _options(members_db))
    assert finished["changed"] is True and finished["post_commit_errors"] == []
    assert _pending_rows(members_db) is None
    assert all(_index_state(members_db, name.removeprefix("public.")) for name in DEFERRED)
