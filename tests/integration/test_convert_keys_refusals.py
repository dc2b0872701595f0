"""The key conversion on a real server: what it refuses, or names, before it changes anything
(unsafe dependents, another owner, values that are not uuids, bad requests, the view a run
would fail on)."""

import psycopg2
import pytest
from ansible.module_utils.key_conversion_plan import ConversionRequest
from ansible.module_utils.key_conversion_run import ConversionError, RunOptions, convert, plan_only

from tests.db_connections import app_conn, dbname
from tests.db_fingerprint import fingerprint


@pytest.mark.parametrize("ddl, refused", [
    ("CREATE TABLE g (u uuid REFERENCES organizations(id), t text GENERATED ALWAYS AS (u::text) STORED);"
     "CREATE VIEW gv AS SELECT t FROM g",
     "generated column t on public.g is used by rule _RETURN on view public.gv"),
    ("CREATE POLICY p ON organizations USING (id = current_setting('app.org')::uuid)",
     "policy p on public.organizations would not survive"),
    ("ALTER TABLE organizations ADD CONSTRAINT not_nil CHECK (id >= '00000000-0000-0000-0000-000000000000'::uuid)",
     "check constraint not_nil"),
    ("CREATE VIEW big AS SELECT id FROM organizations WHERE id < '80000000-0000-0000-0000-000000000000'",
     "view public.big would not keep its meaning"),
    ("CREATE FUNCTION org_count() RETURNS bigint LANGUAGE sql BEGIN ATOMIC "
     "SELECT count(*) FROM organizations WHERE id IS NOT NULL; END",
     "function public.org_count()"),
    ("CREATE PUBLICATION org_pub FOR TABLE organizations (id) WHERE (id IS NOT NULL)",
     "publication org_pub"),
    ("CREATE VIEW ov AS SELECT id FROM organizations; "
     "CREATE FUNCTION ov_ins() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$; "
     "CREATE TRIGGER ov_t INSTEAD OF INSERT ON ov FOR EACH ROW EXECUTE FUNCTION ov_ins()",
     "view public.ov has triggers"),
])
def test_unsafe_dependents_are_refused_by_name_before_any_change(make_database, ddl, refused):
    url = make_database()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE organizations (id uuid PRIMARY KEY DEFAULT gen_random_uuid());"
                    "INSERT INTO organizations DEFAULT VALUES;" + ddl)
    before = fingerprint(url)
    conn = app_conn(url)
    with pytest.raises(ConversionError, match="refused before any change") as err:
        convert(conn, ConversionRequest(), RunOptions())
    assert refused in str(err.value)
    assert fingerprint(url) == before


def test_table_owned_by_another_role_is_refused(make_database, pg_cluster):
    url = make_database()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE organizations (id uuid PRIMARY KEY)")
    with psycopg2.connect(pg_cluster.admin_url(dbname(url))) as admin, admin.cursor() as cur:
        cur.execute("CREATE TABLE foreign_owned (org uuid REFERENCES organizations(id))")
    conn = app_conn(url)
    with pytest.raises(ConversionError, match="owned by postgres"):
        convert(conn, ConversionRequest(), RunOptions())
    conn.close()
    with psycopg2.connect(pg_cluster.admin_url(dbname(url))) as admin, admin.cursor() as cur:
        cur.execute("DROP TABLE foreign_owned")


def test_reverse_direction_refuses_non_uuid_values_naming_rows(make_database):
    url = make_database()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id varchar(36) PRIMARY KEY);"
                    "INSERT INTO t VALUES ('0b5f9f1e-6a4e-4a3c-9d8e-1f2a3b4c5d6e'), ('not-a-uuid')")
    conn = app_conn(url)
    with pytest.raises(ConversionError, match=r"public.t.id holds values that are not UUIDs: row \(0,2\): "):
        convert(conn, ConversionRequest(source_type="varchar(36)", target_type="uuid"), RunOptions())
    conn.close()


@pytest.mark.parametrize("request_kwargs, message", [
    ({"scope": "everything"}, "scope must be one of"),
    ({"keys": ["users.id"]}, "schema.table.column"),
    ({"keys": []}, "keys must list"),
    ({"fk_validation": "later"}, "fk_validation must be one of"),
    ({"target_type": "varchr(36)"}, r"unknown type 'varchr\(36\)'"),
])
def test_bad_requests_fail_clearly(make_database, request_kwargs, message):
    conn = app_conn(make_database())
    with pytest.raises(ValueError, match=message):
        plan_only(conn, ConversionRequest(**request_kwargs))
    conn.close()


def test_validation_names_rows_that_are_not_canonical_uuid_text(make_database):
    """The in-transaction value check, fed a table as a broken conversion would leave it."""
    from types import SimpleNamespace

    from ansible.module_utils.key_conversion_run import _rows_and_values

    url = make_database()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id varchar(36));"
                    "INSERT INTO t VALUES ('0b5f9f1e-6a4e-4a3c-9d8e-1f2a3b4c5d6e'),"
                    " ('0B5F9F1E-6A4E-4A3C-9D8E-1F2A3B4C5D6F')")
    plan = SimpleNamespace(source_type="uuid", tables=[{"relation": "public.t"}],
                           columns=[{"relation": "public.t", "column": "id", "is_array": False}])
    conn = psycopg2.connect(url)
    assert _rows_and_values(conn, plan, {"public.t": 2}) == [
        "public.t: 1 rows hold values that are not lower-case UUID text"]
    assert _rows_and_values(conn, plan, {"public.t": 3}) == [
        "public.t had 3 rows, now 2", "public.t: 1 rows hold values that are not lower-case UUID text"]
    conn.close()


def test_check_mode_names_the_view_a_run_would_fail_on(make_database):
    """A view joining a key with a uuid column left unconverted (scope keys)
    stops type-checking over varchar: check mode refuses it by name, the run
    refuses before any change, and running the plan regardless fails exactly
    there (rolled back here), which is what the refusal spares."""
    url = make_database()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE organizations (id uuid PRIMARY KEY);"
                    "CREATE TABLE audit (actor uuid);"
                    "CREATE VIEW org_audit AS SELECT o.id FROM organizations o JOIN audit a ON a.actor = o.id")
    before = fingerprint(url)
    conn = app_conn(url)
    request = ConversionRequest(scope="keys")
    plan = plan_only(conn, request)["plan"]
    refusal = ("view public.org_audit would not keep its meaning over character varying(36): "
               "public.organizations.id is compared with an expression of the old type")
    assert any(r.startswith(refusal) for r in plan.refusals), plan.refusals
    with pytest.raises(ConversionError, match=r"refused before any change: .*view public\.org_audit"):
        convert(conn, request, RunOptions())
    with pytest.raises(psycopg2.errors.UndefinedFunction, match="operator does not exist: uuid = character varying"), \
            conn.cursor() as cur:
        for statement in plan.sql:
            cur.execute(statement)
    conn.rollback()
    assert fingerprint(url) == before
    # The default scope converts audit.actor too: nothing to refuse.
    outcome = convert(conn, ConversionRequest(), RunOptions())
    assert outcome["changed"] and "public.audit.actor" in [c["qualified"] for c in outcome["plan"].columns]
    conn.close()
