"""One small schema per object kind around a uuid key, converted to varchar(36)
on a real server as the non-superuser owner through key_conversion_run (check
mode first). Each object must come back exactly: every catalog definition
after the conversion equals that of the same schema built natively with
varchar(36) keys, and equals the one before wherever PostgreSQL prints both
types alike. Mixed-case quoted names throughout, where they cost nothing.

Schemas are templates: {key} is the key columns' type.

The helpers are in convert_objects_support.py; the make_role fixture in conftest.py."""

from contextlib import closing

import psycopg2
import pytest
from ansible.module_utils.key_conversion_plan import ConversionRequest
from ansible.module_utils.key_conversion_run import RunOptions, convert, plan_only

from tests.db_connections import app_conn, dbname
from tests.db_fingerprint import fingerprint
from tests.integration.convert_objects_support import (
    VARCHAR,
    assert_refused,
    assert_same_catalog,
    build,
    catalog_differences,
    changed_types,
    convert_checked,
    run_sql,
)

MATVIEW = """
CREATE TABLE "Docs" ("Id" {key} PRIMARY KEY DEFAULT gen_random_uuid(), "Org Id" {key} NOT NULL, title text);
CREATE TABLE "Doc Links" (doc {key} REFERENCES "Docs"("Id"), target {key} REFERENCES "Docs"("Id"));
INSERT INTO "Docs" ("Org Id", title) SELECT gen_random_uuid(), 'doc ' || g FROM generate_series(1, 20) g;
INSERT INTO "Doc Links" SELECT a."Id", b."Id" FROM "Docs" a JOIN "Docs" b ON a.title < b.title
  WHERE a.title LIKE '%1%';
CREATE MATERIALIZED VIEW "Doc Stats" AS
  SELECT d."Id" AS "Doc Id", d."Org Id", count(l.target) AS links
    FROM "Docs" d LEFT JOIN "Doc Links" l ON l.doc = d."Id" GROUP BY d."Id", d."Org Id" {data};
CREATE UNIQUE INDEX "Doc Stats Id" ON "Doc Stats" ("Doc Id");
CREATE INDEX doc_stats_links ON "Doc Stats" (links) WHERE links > 0;
COMMENT ON INDEX "Doc Stats Id" IS 'one row per document';
COMMENT ON MATERIALIZED VIEW "Doc Stats" IS 'links per document';
COMMENT ON COLUMN "Doc Stats"."Doc Id" IS 'the document';
GRANT SELECT ON "Doc Stats" TO PUBLIC;
CREATE VIEW "Linked Docs" AS SELECT "Doc Id", links FROM "Doc Stats" WHERE links > 0;
COMMENT ON VIEW "Linked Docs" IS 'documents with links';
"""


@pytest.mark.parametrize("data", ["WITH DATA", "WITH NO DATA"])
def test_materialized_view_with_indexes_comments_and_a_view_on_top(make_database, data):
    url, native = build(make_database, MATVIEW, data=data)
    outcome, before, after = convert_checked(url, ConversionRequest())
    assert [v["relation"] for v in outcome["plan"].views] == ['public."Doc Stats"', 'public."Linked Docs"']
    # The default scope (all) converts "Org Id" too, a uuid column with no FK.
    assert changed_types(before, after) == {
        'public."Docs".Id': VARCHAR, 'public."Doc Links".doc': VARCHAR, 'public."Doc Links".target': VARCHAR,
        'public."Doc Stats".Doc Id': VARCHAR, 'public."Linked Docs".Doc Id': VARCHAR,
        'public."Docs".Org Id': VARCHAR, 'public."Doc Stats".Org Id': VARCHAR}
    # Definitions, owners, grants, comments, indexes with their comments, populated state.
    assert_same_catalog(native, after)
    assert after["content"] == before["content"]
    assert after["catalog"]["matviews"] == before["catalog"]["matviews"]
    assert [row[2] for row in after["catalog"]["matviews"]] == [data == "WITH DATA"]
    assert [row[0] for row in after["catalog"]["indexes"] if "Doc Stats" in row[1]] == [
        'public."Doc Stats Id"', "public.doc_stats_links"]


OWNED_VIEW_BASE = """
CREATE SCHEMA "Reports";
CREATE TABLE "Reports"."Accounts" ("Id" {key} PRIMARY KEY DEFAULT gen_random_uuid(), name text);
CREATE TABLE "Reports".payments (account {key} REFERENCES "Reports"."Accounts"("Id"), cents int);
INSERT INTO "Reports"."Accounts" (name) SELECT 'a' || g FROM generate_series(1, 5) g;
INSERT INTO "Reports".payments SELECT "Id", 100 FROM "Reports"."Accounts";
"""


OWNED_VIEW = """
CREATE VIEW "Reports"."Account Totals" AS
  SELECT a."Id", sum(p.cents) AS cents FROM "Reports"."Accounts" a
    JOIN "Reports".payments p ON p.account = a."Id" GROUP BY a."Id";
ALTER VIEW "Reports"."Account Totals" OWNER TO "{owner}";
"""
# SELECT is all a working view's owner needs; views are not locked up front


# (LOCK TABLE on a view would check the owner's rights on its base tables).
@pytest.mark.parametrize("privileges", ["SELECT", "ALL"])
def test_view_owned_by_a_role_we_are_in_is_recreated_with_its_owner(make_database, make_role, privileges):
    owner = make_role(member=True)
    url, native = build(
        make_database, OWNED_VIEW_BASE
        + 'GRANT USAGE, CREATE ON SCHEMA "Reports" TO "{owner}";'
        + 'GRANT {privileges} ON ALL TABLES IN SCHEMA "Reports" TO "{owner}";' + OWNED_VIEW
        # Granted through membership, so recorded as granted by the view's owner.
        + 'GRANT SELECT ON "Reports"."Account Totals" TO PUBLIC;'
        + "COMMENT ON VIEW \"Reports\".\"Account Totals\" IS 'per account';",
        owner=owner, privileges=privileges)
    outcome, before, after = convert_checked(url, ConversionRequest(schemas=["Reports"]))
    assert [v["relation"] for v in outcome["plan"].views] == ['"Reports"."Account Totals"']
    owners = {row[0]: row[2] for row in after["catalog"]["relations"]}
    assert owners['"Reports"."Account Totals"'] == owner
    assert_same_catalog(native, after)
    assert after["content"] == before["content"]
    assert set(changed_types(before, after)) == {
        '"Reports"."Accounts".Id', '"Reports".payments.account', '"Reports"."Account Totals".Id'}


def test_view_owned_by_a_role_we_are_not_in_is_refused_by_name(make_database, make_role, pg_cluster):
    """Only a cluster admin can make such a view; we cannot drop it."""
    url = make_database()
    stranger = make_role(member=False)
    run_sql(url, OWNED_VIEW_BASE.format(key="uuid"))
    run_sql(pg_cluster.admin_url(dbname(url)), OWNED_VIEW.format(owner=stranger))
    assert_refused(url, ConversionRequest(schemas=["Reports"]),
                   f'view "Reports"."Account Totals" is owned by {stranger}')


CHECKS = """
CREATE TABLE "Tokens" ("Id" {key} PRIMARY KEY,
  CONSTRAINT "Id Is Text 36" CHECK (length("Id"::text) = 36),
  CONSTRAINT id_present CHECK ("Id" IS NOT NULL));
CREATE TABLE token_uses (token {key} REFERENCES "Tokens"("Id"),
  CONSTRAINT "Token Lower" CHECK (token::text = lower(token::text)));
COMMENT ON CONSTRAINT "Id Is Text 36" ON "Tokens" IS 'canonical text';
INSERT INTO "Tokens" SELECT gen_random_uuid() FROM generate_series(1, 10);
INSERT INTO token_uses SELECT "Id" FROM "Tokens";
INSERT INTO token_uses VALUES (NULL);
ALTER TABLE token_uses ADD CONSTRAINT token_set CHECK (token IS NOT NULL) NOT VALID;
"""


def test_check_constraints_over_converted_columns_survive(make_database):
    url, native = build(make_database, CHECKS)
    _, before, after = convert_checked(url, ConversionRequest())
    # Definitions, the NOT VALID one left NOT VALID, comments: all as before.
    assert_same_catalog(before, after)
    assert_same_catalog(native, after)
    assert after["content"] == before["content"]
    assert set(changed_types(before, after)) == {'public."Tokens".Id', "public.token_uses.token"}
    checks = {row[1]: row[6] for row in after["catalog"]["constraints"] if row[2] == "c"}
    assert checks == {"Id Is Text 36": True, "id_present": True, "Token Lower": True, "token_set": False}
    with closing(app_conn(url)) as conn, conn.cursor() as cur, \
            pytest.raises(psycopg2.errors.CheckViolation, match="Id Is Text 36"):
        cur.execute("""INSERT INTO "Tokens" VALUES ('not 36 characters')""")


def test_check_constraint_ordering_a_key_against_a_uuid_literal_is_refused_by_name(make_database):
    # Equality with a uuid constant is retyped (test_convert_keys_literals.py); an
    # ordering is not the same over text, so it is refused, in the plan.
    url = make_database()
    run_sql(url, CHECKS.format(key="uuid") + """ALTER TABLE token_uses ADD CONSTRAINT "Not Nil"
                CHECK (token > '00000000-0000-0000-0000-000000000000'::uuid)""")
    assert_refused(url, ConversionRequest(), "check constraint Not Nil on public.token_uses")


def test_check_constraint_comparing_with_a_uuid_function_is_refused_by_name(make_database):
    url = make_database()
    run_sql(url, CHECKS.format(key="uuid") + """
        CREATE FUNCTION nil_id() RETURNS uuid LANGUAGE sql IMMUTABLE
          AS $$SELECT '00000000-0000-0000-0000-000000000000'::uuid$$;
        ALTER TABLE "Tokens" ADD CONSTRAINT "Not Nil" CHECK ("Id" <> nil_id())""")
    assert_refused(url, ConversionRequest(), "Not Nil")


PUBLICATIONS = """
CREATE TABLE "Orders" ("Id" {key} PRIMARY KEY DEFAULT gen_random_uuid(), note text);
CREATE TABLE "Order Lines" ("Order Id" {key} REFERENCES "Orders"("Id"), qty int);
CREATE PUBLICATION "Orders Pub" FOR TABLE "Orders", "Order Lines" WITH (publish = 'insert, update');
CREATE PUBLICATION notes_pub FOR TABLE "Orders" WHERE (note IS NOT NULL);
COMMENT ON PUBLICATION "Orders Pub" IS 'to the warehouse';
INSERT INTO "Orders" (note) SELECT 'n' || g FROM generate_series(1, 5) g;
INSERT INTO "Order Lines" SELECT "Id", 1 FROM "Orders";
"""


def test_publications_without_key_columns_in_them_keep_their_membership(make_database):
    url, native = build(make_database, PUBLICATIONS)
    _, before, after = convert_checked(url, ConversionRequest())
    # Membership, options, the WHERE on a non-key column and the comment are unchanged.
    assert len(after["catalog"]["publication_tables"]) == 3
    assert_same_catalog(before, after)
    assert_same_catalog(native, after)
    assert set(changed_types(before, after)) == {'public."Orders".Id', 'public."Order Lines".Order Id'}


@pytest.mark.parametrize("publication", [
    """CREATE PUBLICATION "Keyed Pub" FOR TABLE "Orders" WHERE ("Id" IS NOT NULL)""",
    """CREATE PUBLICATION "Keyed Pub" FOR TABLE "Order Lines" ("Order Id", qty)""",
])
def test_publication_filtering_on_a_key_column_is_refused_by_name(make_database, publication):
    # PostgreSQL refuses to change the type of a column a publication filters on or lists.
    url = make_database()
    run_sql(url, PUBLICATIONS.format(key="uuid") + publication)
    assert_refused(url, ConversionRequest(), "publication Keyed Pub")


PARTITIONED = """
CREATE SCHEMA "Tenancy";
CREATE TABLE "Tenancy"."Owners" ("Id" {key} PRIMARY KEY DEFAULT gen_random_uuid());
CREATE TABLE "Tenancy"."Accounts" ("Id" {key} NOT NULL, "Tenant" text NOT NULL,
    "Owner Id" {key} REFERENCES "Tenancy"."Owners"("Id") ON DELETE CASCADE,
    PRIMARY KEY ("Id", "Tenant"), CONSTRAINT "Accounts Tenant Id" UNIQUE ("Tenant", "Id"))
  PARTITION BY LIST ("Tenant");
CREATE TABLE "Tenancy"."Accounts A" PARTITION OF "Tenancy"."Accounts" FOR VALUES IN ('a');
CREATE TABLE "Tenancy".accounts_b PARTITION OF "Tenancy"."Accounts" FOR VALUES IN ('b');
CREATE TABLE invoices (id {key} PRIMARY KEY DEFAULT gen_random_uuid(), account {key}, tenant text,
    FOREIGN KEY (account, tenant) REFERENCES "Tenancy"."Accounts" ("Id", "Tenant") DEFERRABLE);
CREATE TABLE "Events" (at date NOT NULL, tenant text, account {key}, invoice {key} REFERENCES invoices(id),
    CONSTRAINT "Events Account" FOREIGN KEY (tenant, account) REFERENCES "Tenancy"."Accounts" ("Tenant", "Id"))
  PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF "Events" FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE events_2027 PARTITION OF "Events" FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
INSERT INTO "Tenancy"."Owners" SELECT gen_random_uuid() FROM generate_series(1, 4);
INSERT INTO "Tenancy"."Accounts" SELECT gen_random_uuid(), t, "Id" FROM "Tenancy"."Owners", (VALUES ('a'), ('b')) v(t);
INSERT INTO invoices (account, tenant) SELECT "Id", "Tenant" FROM "Tenancy"."Accounts";
INSERT INTO "Events" SELECT date '2026-06-01' + (row_number() OVER () * 60)::int, tenant, account, id FROM invoices;
"""


PARTITIONS = ('"Tenancy"."Accounts A"', '"Tenancy".accounts_b', "public.events_2026", "public.events_2027")


def test_fks_to_and_from_partitioned_tables_recreate_only_parent_constraints(make_database):
    url, native = build(make_database, PARTITIONED)
    outcome, before, after = convert_checked(url, ConversionRequest(schemas=["Tenancy", "public"]))
    # One ALTER per parent; the partitions follow.
    assert sorted(rel for rel, _ in outcome["plan"].alter_sql) == [
        '"Tenancy"."Accounts"', '"Tenancy"."Owners"', 'public."Events"', "public.invoices"]
    fks = [row for row in before["catalog"]["constraints"] if row[2] == "f"]
    parents = [row for row in fks if not row[7]]  # conparentid = 0
    assert len(parents) == 4 and len(fks) > len(parents)  # partition copies exist
    # FK statements as run: (relation, number of FKs added), only on parents.
    added = [(s.split(" ADD CONSTRAINT ", 1)[0].removeprefix("ALTER TABLE "), s.count(" FOREIGN KEY ("))
             for s in outcome["executed_sql"] if " ADD CONSTRAINT " in s and " FOREIGN KEY (" in s]
    assert {rel for rel, _ in added} == {row[0] for row in parents}
    assert sum(n for _, n in added) == len(parents)
    # Every partition copy is back and attached to its parent (conparentid <> 0):
    # constraints, indexes and rows all as before.
    assert_same_catalog(before, after)
    assert_same_catalog(native, after)
    assert after["content"] == before["content"]
    changed = changed_types(before, after)
    assert set(changed.values()) == {VARCHAR}
    assert {c for c in changed if c.startswith(PARTITIONS)} == {
        '"Tenancy"."Accounts A".Id', '"Tenancy"."Accounts A".Owner Id', '"Tenancy".accounts_b.Id',
        '"Tenancy".accounts_b.Owner Id', "public.events_2026.account", "public.events_2026.invoice",
        "public.events_2027.account", "public.events_2027.invoice"}


def round_trip(url: str) -> tuple[dict, dict]:
    """uuid -> varchar(36) -> uuid over the same columns: (before, after)."""
    original = fingerprint(url, extended=True)
    with closing(app_conn(url)) as conn:
        there = convert(conn, ConversionRequest(), RunOptions())
        assert there["changed"] and set(changed_types(original, fingerprint(url)).values()) == {VARCHAR}
        keys = [c["qualified"] for c in there["plan"].columns]
        back = convert(conn, ConversionRequest(keys=keys, scope="keys", source_type="varchar(36)",
                                               target_type="uuid"), RunOptions())
    assert sorted(c["qualified"] for c in back["plan"].columns) == sorted(keys)
    return original, fingerprint(url, extended=True)


def test_production_fixture_round_trip_restores_types_content_and_objects(broken_db):
    original, final = round_trip(broken_db)
    assert final["types"] == original["types"]
    assert final["content"] == original["content"]
    differences = catalog_differences(original, final)
    # Only view definitions differ (their ::text casts, noted in the plan: next test).
    assert set(differences) <= {"relations"}
    for was, now in zip(differences.get("relations", {}).get("before", []),
                        differences.get("relations", {}).get("after", []), strict=True):
        assert was[:7] == now[:7] and was[8:] == now[8:]


def test_reverse_direction_names_every_view_that_keeps_text_casts(broken_db):
    """Views come back from the definition PostgreSQL printed over varchar, with
    its ::text casts (correct results, but text comparisons): the plan says so,
    view by view, rather than rewriting SQL text."""
    with closing(app_conn(broken_db)) as conn:
        there = convert(conn, ConversionRequest(), RunOptions())
        assert not there["plan"].notes or all("WITH DATA" in note for note in there["plan"].notes)
        keys = [c["qualified"] for c in there["plan"].columns]
        back = plan_only(conn, ConversionRequest(keys=keys, scope="keys", source_type="varchar(36)",
                                                 target_type="uuid"))["plan"]
    views = [v["relation"] for v in back.views]
    assert views
    for relation in views:
        assert any(note.startswith(f"view {relation} is recreated from its definition over the text columns")
                   or note.startswith(f"materialized view {relation} is recreated from its definition")
                   for note in back.notes), relation


DEFAULTS = """
CREATE SCHEMA "Util";
CREATE FUNCTION "Util"."New Id"() RETURNS uuid LANGUAGE sql VOLATILE AS 'SELECT gen_random_uuid()';
CREATE TABLE "Tickets" ("Id" {key} PRIMARY KEY DEFAULT "Util"."New Id"(), subject text);
CREATE TABLE ticket_notes (id {key} PRIMARY KEY DEFAULT "Util"."New Id"(),
                           "Ticket Id" {key} NOT NULL REFERENCES "Tickets"("Id"));
INSERT INTO "Tickets" (subject) SELECT 's' || g FROM generate_series(1, 5) g;
INSERT INTO ticket_notes ("Ticket Id") SELECT "Id" FROM "Tickets";
"""


def test_default_from_a_uuid_function_in_another_schema_still_yields_36_characters(make_database):
    url, native = build(make_database, DEFAULTS)
    _, before, after = convert_checked(url, ConversionRequest())
    assert_same_catalog(before, after)  # the defaults' text included
    assert_same_catalog(native, after)
    assert set(changed_types(before, after)) == {
        'public."Tickets".Id', "public.ticket_notes.id", "public.ticket_notes.Ticket Id"}
    with closing(app_conn(url)) as conn, conn.cursor() as cur:
        cur.execute("""INSERT INTO "Tickets" (subject) VALUES ('new') RETURNING "Id", pg_typeof("Id")""")
        ticket, typ = cur.fetchone()
        cur.execute("""INSERT INTO ticket_notes ("Ticket Id") VALUES (%s) RETURNING id""", (ticket,))
        (note,) = cur.fetchone()
        conn.rollback()
    assert typ == "character varying"
    assert len(ticket) == len(note) == 36 and ticket == ticket.lower()
