"""The key conversion on a real server, as the non-superuser owner: every object
kind captured and recreated exactly, all or nothing, idempotent, both directions.

What it refuses or names before it changes anything is in test_convert_keys_refusals.py; the
schema these use in kitchen_sink.py."""

import os
import threading

import psycopg2
import pytest
from ansible.module_utils.key_conversion_plan import ConversionRequest
from ansible.module_utils.key_conversion_run import ConversionError, RunOptions, convert, plan_only
from ansible.module_utils.pg_catalog import CatalogReader, Column

from tests.db_connections import app_conn, dbname
from tests.db_fingerprint import fingerprint
from tests.integration.kitchen_sink import kitchen_sink_sql


@pytest.fixture
def reader_role(pg_cluster, make_database):
    name = "reader_" + os.urandom(4).hex()
    with psycopg2.connect(pg_cluster.admin_url()) as admin:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'CREATE ROLE "{name}" NOLOGIN')
    yield f'"{name}"'
    # make_database drops its databases (and the grants in them) after this runs? No:
    # fixtures tear down in reverse order, so revoke here in every database it may hold.
    with psycopg2.connect(pg_cluster.admin_url()) as admin:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'")
            for (db,) in cur.fetchall():
                with psycopg2.connect(pg_cluster.admin_url(db)) as dbconn, dbconn.cursor() as dbcur:
                    dbcur.execute(f'DROP OWNED BY "{name}"')
            cur.execute(f'DROP ROLE "{name}"')


@pytest.fixture
def sink(make_database, reader_role):
    url = make_database()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(kitchen_sink_sql(reader_role))
    return url


@pytest.fixture
def native_sink(make_database, reader_role):
    """The same schema built directly with varchar(36) keys, as the models would."""
    url = make_database()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(kitchen_sink_sql(reader_role, "varchar(36)"))
    return url


# The defaults (FKs validated and secondary indexes built after COMMIT, the shape
# value check) and everything inside the transaction with the round-trip check.
LEVERS = {"defaults": {},
          "all inside": {"fk_validation": "in_transaction", "index_build": "in_transaction",
                         "value_check": "round_trip"}}


@pytest.mark.parametrize("levers", LEVERS.values(), ids=LEVERS.keys())
def test_kitchen_sink_round_trip_keeps_everything_but_the_types(sink, native_sink, levers):
    before = fingerprint(sink)
    conn = app_conn(sink)
    outcome = convert(conn, ConversionRequest(**levers), RunOptions(connect=lambda: app_conn(sink)))
    assert outcome["changed"] is True and outcome["post_commit_errors"] == []
    plan = outcome["plan"]
    assert plan.refusals == []
    executed = "\n".join(outcome["executed_sql"])
    if levers:  # nothing after COMMIT, every value cast back
        assert not plan.deferred_validations and not plan.records_pending and "::uuid::text" in executed
        assert "CONCURRENTLY" not in executed and "VALIDATE" not in executed
    else:
        assert plan.deferred_validations and plan.records_pending and "::uuid::text" not in executed
    expected = {  # relation (as regclass prints it) . column
        'public."Users".ID', 'public."Users".organization_id', 'public."Users".invited_by',
        "public.organizations.id", "public.organizations.owner_id", "public.documents.id",
        "public.documents.organization_id", "public.document_shares.organization_id",
        "public.document_shares.document_id", '"Audit"."Events".Actor', '"Audit"."Events".document_id',
        "public.measurements.user_id", "public.measurements_2026.user_id",
        # views follow their base columns
        "public.org_members.ID", "public.org_members.organization_id",
        'public."Org Members 2".ID', 'public."Org Members 2".organization_id',
        "public.doc_counts.organization_id", "public.doc_ids.id",
    }
    after = fingerprint(sink)
    changed = {col for col in before["types"] if before["types"][col] != after["types"][col]}
    assert changed == expected
    assert all(after["types"][c] == "character varying(36)" for c in changed)
    assert after["content"] == before["content"]
    # Every object is back exactly as PostgreSQL renders it over varchar(36)
    # columns: the catalog equals that of the schema built natively with them
    # (view and trigger expressions print ::text casts over varchar, as they must).
    assert after["catalog"] == fingerprint(native_sink)["catalog"]
    assert outcome["fk_count_before"] == outcome["fk_count_after"]
    # A gen_random_uuid() default still yields a 36-character string.
    with conn.cursor() as cur:
        cur.execute("INSERT INTO organizations (name) VALUES ('new') RETURNING id, pg_typeof(id)")
        new_id, new_type = cur.fetchone()
        assert len(new_id) == 36 and new_type == "character varying"
    conn.rollback()

    # A second run plans nothing and executes no DDL.
    again = convert(conn, ConversionRequest(), RunOptions())
    assert again["changed"] is False and again["executed_sql"] == []
    conn.close()


def test_check_mode_plan_executes_nothing(sink, pg_cluster):
    before = fingerprint(sink)
    conn = app_conn(sink)
    planned = plan_only(conn, ConversionRequest(fk_validation="after_commit"))
    plan = planned["plan"]
    assert plan.needed and plan.refusals == []
    assert len(plan.alter_sql) == len(plan.tables) == 6  # one ALTER per table, partitions follow the parent
    assert plan.lock_relations == sorted(plan.lock_relations)
    assert any("NOT VALID" in s and "measurements" not in s for s in plan.create_sql)
    # partitioned tables cannot take NOT VALID: validated inside the transaction
    assert not any(rel == "public.measurements" for rel, _ in plan.deferred_validations)
    # an FK that was NOT VALID stays NOT VALID and is not validated after commit
    assert ('"Audit"."Events"', "events_actor") not in plan.deferred_validations
    conn.close()
    assert fingerprint(sink) == before


@pytest.mark.parametrize("workers", [1, 3])
def test_after_commit_validation_restores_the_same_fks(sink, workers):
    before = fingerprint(sink)
    conn = app_conn(sink)
    extra = []

    def connect():
        extra.append(app_conn(sink))
        return extra[-1]

    outcome = convert(conn, ConversionRequest(fk_validation="after_commit"),
                      RunOptions(connect=connect, after_commit_workers=workers))
    assert outcome["post_commit_errors"] == []
    assert len(extra) == workers - 1 and all(c.closed for c in extra)
    plan = outcome["plan"]
    assert sorted(s for s in outcome["executed_sql"] if s in plan.post_commit_sql) == sorted(plan.post_commit_sql)
    assert any(s.endswith("VALIDATE CONSTRAINT \"documents_organization_id_fkey\"")
               for s in outcome["executed_sql"])
    conn.close()
    after = fingerprint(sink)
    assert after["content"] == before["content"]
    constraints = {row[:2]: row for row in after["catalog"]["constraints"]}
    for row in before["catalog"]["constraints"]:
        # validated state, deferrability and the NOT VALID one kept exactly
        assert constraints[row[:2]][2:] == row[2:] or row[2] != "f"


def test_half_converted_database_converges(sink):
    conn = app_conn(sink)
    first = convert(conn, ConversionRequest(keys=["public.organizations.id"], scope="keys"), RunOptions())
    assert first["changed"]
    # organizations.id's component includes Users via organization_id, but not Users.ID's own FKs
    assert "public.organizations.id" in [c["qualified"] for c in first["plan"].columns]
    # Naming both keys: the converted component is recognised, only the rest changes.
    rest = convert(conn, ConversionRequest(keys=["public.organizations.id", "public.Users.ID"], scope="keys"),
                   RunOptions())
    assert rest["changed"]
    assert "public.organizations.id" in rest["plan"].already_converted
    first_columns = {c["qualified"] for c in first["plan"].columns}
    assert first_columns.isdisjoint(c["qualified"] for c in rest["plan"].columns)
    last = convert(conn, ConversionRequest(scope="keys"), RunOptions())  # auto: documents.id remains
    assert [c["qualified"] for c in last["plan"].columns if c["column"] == "id"] == ["public.documents.id"]
    assert convert(conn, ConversionRequest(), RunOptions())["changed"] is False
    conn.close()


def test_terminated_backend_leaves_nothing_behind_and_a_rerun_succeeds(sink, pg_cluster):
    before = fingerprint(sink)
    conn = app_conn(sink)
    victim = conn.get_backend_pid()

    def kill_midway(message):
        if message.startswith("rewriting 3/"):
            with psycopg2.connect(pg_cluster.admin_url()) as admin, admin.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(%s)", (victim,))

    with pytest.raises(ConversionError, match="rolled back"):
        convert(conn, ConversionRequest(), RunOptions(progress=kill_midway))
    assert fingerprint(sink) == before
    outcome = convert(app_conn(sink), ConversionRequest(), RunOptions())
    assert outcome["changed"]


def test_lock_timeout_retries_then_names_the_blocker(sink):
    blocker = psycopg2.connect(sink)
    with blocker.cursor() as cur:
        cur.execute("SELECT count(*) FROM documents")  # holds ACCESS SHARE until rollback
    sleeps = []
    conn = app_conn(sink)
    with pytest.raises(ConversionError) as err:
        convert(conn, ConversionRequest(), RunOptions(lock_timeout_ms=50, lock_retries=2, sleep=sleeps.append))
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 1.0
    assert f"pid {blocker.get_backend_pid()}" in str(err.value)
    assert "SELECT count(*) FROM documents" in str(err.value)
    blocker.rollback()

    # Released in the middle of the retries: the conversion goes through.
    blocker_cur = blocker.cursor()
    blocker_cur.execute("SELECT count(*) FROM documents")
    # Released after the first attempts (planning before the lock takes some tenths of a second).
    released = threading.Timer(1.0, blocker.rollback)
    released.start()
    outcome = convert(conn, ConversionRequest(), RunOptions(lock_timeout_ms=100, lock_retries=5,
                                                            retry_base_seconds=0.2))
    released.join()
    assert outcome["changed"] and outcome["lock_attempts"]
    blocker.close()


def test_a_lock_error_that_is_not_a_timeout_fails_clearly_having_changed_nothing(sink):
    blocker = psycopg2.connect(sink)
    with blocker.cursor() as cur:
        cur.execute("SELECT count(*) FROM documents")
    conn = app_conn(sink)
    # statement_timeout shorter than lock_timeout: the LOCK fails with 57014, not 55P03.
    with pytest.raises(ConversionError, match=r"could not lock the .* relations, nothing changed: .*statement timeout"):
        convert(conn, ConversionRequest(), RunOptions(lock_timeout_ms=5000, statement_timeout_ms=100,
                                                      lock_retries=3, sleep=pytest.fail))
    blocker.rollback()
    blocker.close()
    reader = CatalogReader(conn)
    assert reader.column_types([Column("public", "Users", "ID")]) == {"public.Users.ID": "uuid"}
    conn.close()


def test_reverse_direction_varchar_to_uuid(sink):
    conn = app_conn(sink)
    convert(conn, ConversionRequest(), RunOptions())
    before = fingerprint(sink)
    back = convert(conn, ConversionRequest(source_type="varchar(36)", target_type="uuid",
                                           keys=["public.organizations.id", 'public.Users.ID',
                                                 "public.documents.id"]), RunOptions())
    assert back["changed"]
    after = fingerprint(sink)
    assert after["content"] == before["content"]
    assert {t for c, t in after["types"].items() if c.endswith("organizations.id")} == {"uuid"}
    assert len(after["catalog"]["constraints"]) == len(before["catalog"]["constraints"])
    conn.close()


def test_scope_all_converts_unlinked_columns_and_lists_leftovers(make_database):
    url = make_database()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE a (id uuid PRIMARY KEY, request_id uuid, tags uuid[]);"
                    "CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$BEGIN NEW.request_id := gen_random_uuid(); RETURN NEW; END$$;"
                    "CREATE TRIGGER a_stamp BEFORE INSERT ON a FOR EACH ROW EXECUTE FUNCTION stamp()")
    conn = app_conn(url)
    keys_only = plan_only(conn, ConversionRequest(scope="keys"))["plan"]
    assert [u["column"] for u in keys_only.unconverted] == ["public.a.request_id"]
    assert keys_only.unconverted[0]["written_by"] == ["a_stamp -> public.stamp()"]
    # The trigger on the converted table names the column left uuid: refused, by name.
    assert keys_only.writers == ["trigger a_stamp on public.a running function public.stamp() names "
                                 "public.a.request_id"]
    assert any(r.startswith("trigger a_stamp on public.a running function") for r in keys_only.refusals)
    allowed = plan_only(conn, ConversionRequest(scope="keys", allow_unconverted_writers=True))["plan"]
    assert allowed.refusals == [] and any("allow_unconverted_writers" in n for n in allowed.notes)
    outcome = convert(conn, ConversionRequest(scope="all", include_arrays=True), RunOptions())
    types = {c["qualified"]: c["new_type"] for c in outcome["plan"].columns}
    assert types == {"public.a.id": "varchar(36)", "public.a.request_id": "varchar(36)",
                     "public.a.tags": "varchar(36)[]"}
    conn.close()


def test_server_log_shows_no_ddl_from_check_mode(sink, pg_cluster):
    """Check mode reads only: no DDL reaches the server, not even rolled back."""
    with psycopg2.connect(pg_cluster.admin_url()) as admin:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{dbname(sink)}" SET log_statement = \'all\'')
    log = os.path.join(pg_cluster.base_dir, "server.log")
    start = os.path.getsize(log)
    conn = psycopg2.connect(sink, application_name="check-mode-probe")
    plan_only(conn, ConversionRequest())
    conn.close()
    with open(log, errors="replace") as handle:
        handle.seek(start)
        lines = [line for line in handle if "app=check-mode-probe" in line and "statement:" in line]
    assert lines, "log_statement=all should have logged the plan's queries"
    ddl = [line for line in lines if any(f"statement: {verb}" in line.upper().replace("STATEMENT:", "statement:")
                                         for verb in ("ALTER", "DROP", "CREATE", "LOCK", "COMMENT", "GRANT"))]
    assert ddl == []


def test_collation_option_converts_to_c_and_converges(sink):
    conn = app_conn(sink)
    convert(conn, ConversionRequest(), RunOptions())
    # Already varchar(36), but not yet COLLATE "C": named keys get the collation only
    # (auto finds keys of the source type, and none is uuid any more).
    keys = ["public.organizations.id", "public.Users.ID", "public.documents.id"]
    outcome = convert(conn, ConversionRequest(keys=keys, collation="C"), RunOptions())
    assert outcome["changed"]
    assert all('COLLATE "C"' in statement for _, statement in outcome["plan"].alter_sql)
    with conn.cursor() as cur:
        cur.execute("""SELECT DISTINCT c.collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation
                        WHERE a.attrelid = 'public.organizations'::regclass AND a.attname IN ('id', 'owner_id')""")
        assert cur.fetchall() == [("C",)]
    conn.rollback()
    assert convert(conn, ConversionRequest(keys=keys, collation="C"), RunOptions())["changed"] is False
    conn.close()


def test_shape_value_check_converts_and_falls_back_when_a_cast_overrides_uuid_output(sink, pg_cluster):
    conn = app_conn(sink)
    request = ConversionRequest(value_check="shape")
    plan = plan_only(conn, request)["plan"]
    assert all("LIKE '________-____-____-____-____________'" in s for _, s in plan.alter_sql if "CHECK" in s)
    # A cast from uuid to varchar in the catalog (only a superuser can add one)
    # means the output is not uuid_out's: the exact round trip is checked instead.
    with psycopg2.connect(pg_cluster.admin_url(dbname(sink))) as admin, admin.cursor() as cur:
        cur.execute("CREATE CAST (uuid AS varchar) WITH INOUT")
    conn.rollback()
    plan = plan_only(conn, request)["plan"]
    assert all("::uuid::text" in s for _, s in plan.alter_sql if "CHECK" in s)
    assert any("checked round_trip" in note for note in plan.notes)
    with psycopg2.connect(pg_cluster.admin_url(dbname(sink))) as admin, admin.cursor() as cur:
        cur.execute("DROP CAST (uuid AS varchar)")
    conn.rollback()
    outcome = convert(conn, request, RunOptions())
    assert outcome["changed"] and outcome["fk_count_before"] == outcome["fk_count_after"]
    assert convert(conn, request, RunOptions())["changed"] is False
    conn.close()


def test_shape_check_by_default_accepts_every_uuid_spelling_exactly_as_the_round_trip(make_database):
    """Whatever spelling a uuid was written in, uuid_out prints it canonical: the
    shape check (the default) passes every value, and each equals its round trip."""
    url = make_database()
    spellings = ["00000000-0000-0000-0000-000000000000", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
                 "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", "A0EEBC999C0B4EF8BB6D6BB9BD380A12",
                 "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a13"]
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id uuid PRIMARY KEY); CREATE TABLE c (t_id uuid REFERENCES t(id))")
        cur.executemany("INSERT INTO t VALUES (%s::uuid)", [(s,) for s in spellings])
        cur.execute("INSERT INTO c SELECT id FROM t")
        cur.execute("SELECT id::text FROM t ORDER BY id")
        expected = [row[0] for row in cur.fetchall()]
    conn = app_conn(url)
    plan = plan_only(conn, ConversionRequest())["plan"]
    assert all("LIKE '________-____-____-____-____________'" in s for _, s in plan.alter_sql if "CHECK" in s)
    outcome = convert(conn, ConversionRequest(), RunOptions(connect=lambda: app_conn(url)))
    assert outcome["changed"] and outcome["post_commit_errors"] == []
    with conn.cursor() as cur:
        cur.execute("SELECT id, id::uuid::text = id, pg_typeof(id)::text FROM t ORDER BY id::uuid")
        rows = cur.fetchall()
    assert [r[0] for r in rows] == expected and all(r[1] for r in rows)
    assert {r[2] for r in rows} == {"character varying"}
    conn.close()
