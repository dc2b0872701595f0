"""The catalog reader against a real server, on small targeted schemas."""

import psycopg2
import pytest
from ansible.module_utils.pg_catalog import CatalogReader, Column

SCHEMA = """
CREATE SCHEMA "Billing";
CREATE TABLE organizations (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), owner_id uuid);
CREATE TABLE users (id uuid PRIMARY KEY, organization_id uuid REFERENCES organizations(id),
                    invited_by uuid REFERENCES users(id) ON DELETE SET NULL);
ALTER TABLE organizations ADD CONSTRAINT "Owner FK" FOREIGN KEY (owner_id) REFERENCES users(id)
  DEFERRABLE INITIALLY DEFERRED;
CREATE TABLE documents (id uuid PRIMARY KEY, organization_id uuid NOT NULL,
                        UNIQUE (organization_id, id));
CREATE TABLE shares (organization_id uuid, document_id uuid,
  FOREIGN KEY (organization_id, document_id) REFERENCES documents(organization_id, id) MATCH FULL);
CREATE TABLE "Billing"."Invoices" ("Org Id" uuid, amount int CHECK (amount > 0));
ALTER TABLE "Billing"."Invoices" ADD FOREIGN KEY ("Org Id") REFERENCES organizations(id) NOT VALID;
CREATE TABLE events (id bigint, user_id uuid REFERENCES users(id)) PARTITION BY RANGE (id);
CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM (0) TO (100);
CREATE VIEW org_view AS SELECT id FROM organizations WHERE owner_id IS NOT NULL;
CREATE VIEW org_view_2 AS SELECT * FROM org_view;
CREATE MATERIALIZED VIEW user_mv AS SELECT id, organization_id FROM users;
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY doc_policy ON documents USING (organization_id IS NOT NULL);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER user_org_change BEFORE UPDATE OF organization_id ON users
  FOR EACH ROW EXECUTE FUNCTION touch();
CREATE RULE shares_rule AS ON DELETE TO shares WHERE OLD.document_id IS NULL DO INSTEAD NOTHING;
CREATE TABLE gen (u uuid, u_text text GENERATED ALWAYS AS (u::text) STORED);
CREATE FUNCTION lookup_org(p uuid) RETURNS text LANGUAGE sql AS $$SELECT 'x'$$;
CREATE FUNCTION body_only() RETURNS int LANGUAGE plpgsql AS $$DECLARE v uuid; BEGIN RETURN 1; END$$;
"""


@pytest.fixture
def reader(make_database):
    conn = psycopg2.connect(make_database())
    with conn.cursor() as cur:
        cur.execute(SCHEMA)
    conn.commit()
    yield CatalogReader(conn)
    conn.close()


def test_runs_as_non_superuser_owner(reader):
    info = reader.database_info()
    assert info["superuser"] is False
    assert info["user"] == "app_owner"


def test_foreign_keys_match_pg_constraint_exactly(reader):
    fks = reader.foreign_keys()
    with reader.conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f'")
        assert len(fks) == cur.fetchone()[0]
    by_name = {fk.name: fk for fk in fks if not fk.inherited}
    owner = by_name["Owner FK"]
    assert owner.deferrable and owner.deferred
    assert owner.definition == (
        "FOREIGN KEY (owner_id) REFERENCES public.users(id) DEFERRABLE INITIALLY DEFERRED")
    invoice = next(fk for fk in fks if fk.table == "Invoices")
    assert invoice.relation == '"Billing"."Invoices"'
    assert invoice.columns == ("Org Id",) and not invoice.validated
    assert invoice.definition.endswith("NOT VALID")
    share = next(fk for fk in fks if fk.table == "shares")
    assert share.columns == ("organization_id", "document_id")
    assert share.ref_columns == ("organization_id", "id")
    assert "MATCH FULL" in share.definition
    assert any(fk.inherited and fk.table == "events_1" for fk in fks)


def test_columns_and_keys(reader):
    uuid_cols = {c.qualified for c in reader.columns_of_types(["uuid"], ["public", "Billing"])}
    assert "Billing.Invoices.Org Id" in uuid_cols
    assert "public.events_1.user_id" not in uuid_cols  # partitions follow their parent
    pks = {c.qualified: c.type for c in reader.primary_key_columns()}
    assert pks["public.users.id"] == "uuid"
    types = reader.column_types([Column("public", "users", "id"), Column("Billing", "Invoices", "Org Id")])
    assert types == {"public.users.id": "uuid", "Billing.Invoices.Org Id": "uuid"}


def test_dependents_are_classified(reader):
    cols = [Column("public", t, c) for t, c in [
        ("organizations", "owner_id"), ("users", "id"), ("users", "organization_id"),
        ("documents", "organization_id"), ("shares", "document_id"), ("gen", "u")]]
    found = {(d.kind, d.name) for d in reader.column_dependents(cols)}
    assert ("view", "public.org_view") in found
    assert ("materialized view", "public.user_mv") in found
    assert ("policy", "doc_policy") in found
    assert ("trigger", "user_org_change") in found
    assert ("rule", "shares_rule") in found
    assert ("generated column", "u_text") in found
    assert ("view", "public.org_view_2") not in found  # depends on the view, not the column
    nested = reader.dependent_relations(["public.org_view"])
    assert nested == [{"relation": "public.org_view_2", "kind": "view", "depth": 1}]


def test_functions_using_uuid(reader):
    functions = {f["function"]: f for f in reader.functions_using_types(["uuid"])}
    assert functions["public.lookup_org(uuid)"]["in_signature"] is True
    assert functions["public.body_only()"]["in_body"] is True
    assert "public.touch()" not in functions


def test_tables_and_counts(reader):
    tables = {(t["schema"], t["table"]): t for t in reader.tables(["public", "Billing"])}
    assert tables[("public", "events")]["partitioned"] is True
    assert reader.exact_row_count("Billing", "Invoices") == 0
    assert reader.alembic_version() == []


def test_other_sessions_see_a_long_transaction(reader, pg_cluster):
    other = psycopg2.connect(pg_cluster.url(reader.database_info()["name"]))
    with other.cursor() as cur:
        cur.execute("SELECT 1")  # leaves a transaction open
    sessions = reader.other_sessions(long_seconds=0)
    other.close()
    assert any(s["long_transaction"] and s["state"] == "idle in transaction" for s in sessions)


def _partition_sizes(reader, parent):
    """Independently of the reader: the partitions' total size and row estimates."""
    with reader.conn.cursor() as cur:
        cur.execute("""SELECT sum(pg_total_relation_size(inhrelid))::bigint,
                              sum(GREATEST(c.reltuples, 0))::bigint
                         FROM pg_inherits JOIN pg_class c ON c.oid = inhrelid
                        WHERE inhparent = %s::regclass""", (parent,))
        return cur.fetchone()


@pytest.fixture
def partitioned(reader):
    """events gets a second partition and rows in both, analysed."""
    with reader.conn.cursor() as cur:
        cur.execute("""
            INSERT INTO organizations (id) VALUES ('00000000-0000-0000-0000-000000000001');
            INSERT INTO users (id, organization_id)
                 VALUES ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000001');
            CREATE TABLE events_2 PARTITION OF events FOR VALUES FROM (100) TO (10000);
            INSERT INTO events SELECT g, '00000000-0000-0000-0000-000000000002' FROM generate_series(0, 2999) g;
        """)
    reader.conn.commit()
    reader.conn.autocommit = True
    with reader.conn.cursor() as cur:
        cur.execute("ANALYZE")
    reader.conn.autocommit = False
    return reader


def test_partitioned_table_reports_its_partitions_size(partitioned):
    tables = {t["table"]: t for t in partitioned.tables()}
    size, estimate = _partition_sizes(partitioned, "public.events")
    assert size > 0
    assert tables["events"]["total_bytes"] == size
    assert tables["events"]["estimated_rows"] == estimate
    assert {(leaf["schema"], leaf["table"]) for leaf in tables["events"]["leaf_partitions"]} == {
        ("public", "events_1"), ("public", "events_2")}
    assert tables["events_2"]["partition_root"] == ["public", "events"]
    assert tables["users"]["partition_root"] is None and tables["users"]["leaf_partitions"] is None


def _investigate(reader, **kwargs):
    from ansible.module_utils.investigation import investigate

    return investigate(reader, schemas=["public", "Billing"], source_types=["uuid"],
                       expected_type="character varying(36)", long_transaction_seconds=60, **kwargs)


def test_partition_rows_counted_once_and_space_includes_them(partitioned):
    with partitioned.conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM events")
        total = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM events_2")
        in_second = cur.fetchone()[0]
    findings = _investigate(partitioned, exact_count_max_bytes=100 * 1024 * 1024)
    rows = {t["table"]: t for t in findings["tables"]}
    assert rows["events"]["rows"] == total and rows["events"]["rows_exact"]
    assert rows["events_2"]["rows"] == in_second
    # events.user_id references users.id: events is rewritten, its partitions' data once.
    affected = {t["table"]: t["total_bytes"] for t in findings["affected_tables"]}
    size, _ = _partition_sizes(partitioned, "public.events")
    assert affected["events"] == size
    assert not {"events_1", "events_2"} & set(affected)
    assert findings["space"]["affected_tables_bytes"] == sum(affected.values())


def test_large_tables_get_the_planners_estimate(partitioned):
    findings = _investigate(partitioned, exact_count_max_bytes=0)
    with partitioned.conn.cursor() as cur:
        cur.execute("SELECT relname, GREATEST(reltuples, 0)::bigint FROM pg_class "
                    "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")
        planner = dict(cur.fetchall())
    rows = {t["table"]: t for t in findings["tables"]}
    sized = [name for name in planner if rows[name]["total_bytes"] > 0]
    assert sized, "tables with storage"
    for name in sized:
        assert rows[name]["rows_exact"] is False and rows[name]["rows"] == planner[name], name
    assert rows["events"]["rows"] == planner["events_1"] + planner["events_2"] > 0


def test_column_details_size_a_partitioned_table_by_its_partitions(partitioned):
    size, estimate = _partition_sizes(partitioned, "public.events")
    details, = partitioned.column_details([Column("public", "events", "user_id")])
    assert details["table_bytes"] == size > 0
    assert details["estimated_rows"] == estimate
    users, = partitioned.column_details([Column("public", "users", "id")])
    with partitioned.conn.cursor() as cur:
        cur.execute("SELECT pg_total_relation_size('public.users')")
        assert users["table_bytes"] == cur.fetchone()[0]
