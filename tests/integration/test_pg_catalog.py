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
