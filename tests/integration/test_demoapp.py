"""The demo app and its broken production fixture, with real Alembic."""

import psycopg2

from demoapp import fixture, schema
from tests.alembic_runner import alembic


def query(url, sql):
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_broken_fixture_is_production_shaped(make_database):
    url = make_database()
    counts = fixture.build(url, scale=1)
    assert counts["tables"] == query(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0][0]
    assert counts["foreign_keys"] == query(url, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'")[0][0]
    assert counts["tables"] >= 50 and counts["foreign_keys"] >= 100
    types = dict(query(url, "SELECT table_name, data_type FROM information_schema.columns "
                            "WHERE column_name = 'id' AND table_schema = 'public'"))
    assert types["users"] == types["organizations"] == types["documents"] == "uuid"
    assert types["memberships"] == "character varying"
    assert query(url, "SELECT version_num FROM alembic_version") == [("f867c7e3d51c",)]
    assert query(url, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated")[0][0] == 0
    kinds = dict(query(url, """
        SELECT 'deferrable', count(*) FROM pg_constraint WHERE contype = 'f' AND condeferrable
        UNION ALL SELECT 'self', count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = confrelid
        UNION ALL SELECT 'composite', count(*) FROM pg_constraint WHERE contype = 'f' AND cardinality(conkey) > 1
        UNION ALL SELECT 'set null', count(*) FROM pg_constraint WHERE contype = 'f' AND confdeltype = 'n'
        UNION ALL SELECT 'cascade', count(*) FROM pg_constraint WHERE contype = 'f' AND confdeltype = 'c'"""))
    assert all(kinds[k] > 0 for k in kinds), kinds
    planted = query(url, """
        SELECT (SELECT count(*) FROM pg_views WHERE schemaname = 'public'),
               (SELECT count(*) FROM pg_matviews WHERE schemaname = 'public'),
               (SELECT count(*) FROM pg_policies WHERE schemaname = 'public')""")[0]
    assert planted == (2, 1, 1)
    assert sum(1 for t in schema.TABLES for fk in t.fks) == counts["foreign_keys"]


def test_alembic_upgrade_fails_on_the_broken_fixture(broken_db):
    result = alembic(broken_db, "upgrade", "head")
    assert result.returncode != 0
    assert "incompatible types: character varying and uuid" in result.stderr
    # Nothing half-applied: the stored revision and tables are unchanged.
    assert query(broken_db, "SELECT version_num FROM alembic_version") == [("f867c7e3d51c",)]
    assert query(broken_db, "SELECT to_regclass('public.document_templates')") == [(None,)]


def test_alembic_upgrade_succeeds_once_keys_and_revision_are_right(make_database):
    url = make_database()
    fixture.build(url, scale=1, key_type="varchar(36)", alembic_revision=fixture.TRUE_REVISION)
    result = alembic(url, "upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert query(url, "SELECT version_num FROM alembic_version") == [("b354d12d1e7d",)]
    assert query(url, "SELECT to_regclass('public.document_questions')::text") == [("document_questions",)]


def test_alembic_builds_the_schema_on_an_empty_database(make_database):
    url = make_database()
    result = alembic(url, "upgrade", "head")
    assert result.returncode == 0, result.stderr
    tables = query(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0][0]
    assert tables == len(schema.TABLES) + 1 + 7  # alembic_version and the seven later tables
    assert alembic(url, "downgrade", "base").returncode == 0


def test_scale_multiplies_rows_and_every_fk_holds(make_database):
    one = fixture.build(make_database(), scale=1)
    two_url = make_database()
    two = fixture.build(two_url, scale=2)
    assert 1.9 < two["rows"] / one["rows"] < 2.1
    # The FKs existed, validated, while the rows went in (deferred ones checked at
    # COMMIT), so the data satisfies every one of them.
    assert query(two_url, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated") == [(0,)]
    orphans = query(two_url, """
        SELECT count(*) FROM document_shares s
         WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE (d.organization_id, d.id) = (s.organization_id,
                                                                                       s.document_id))""")
    assert orphans == [(0,)]
