"""Build the app's database as production has it: uuid keys on users,
organizations and documents, blockers a careful tool must handle, and an
alembic_version naming a migration that never completed.

    DATABASE_URL=postgresql://... python -m demoapp.fixture [--scale N] [--key-type uuid|varchar]

The URL comes from the environment, never the command line. Everything is
created by the connecting (non-superuser) role in one transaction; rows are
generated set-based, about 5,000 at scale 1 and roughly 1 GB at scale 1000.
"""

from __future__ import annotations

import argparse
import os
import sys

import psycopg2

from demoapp import schema

BROKEN_REVISION = "f867c7e3d51c"  # stored in production; it never completed
TRUE_REVISION = "ba1a5bcdb110"  # what the schema really is: the baseline
ROWS = {"organizations": 10, "users": 50, "documents": 200}  # per unit of scale
SATELLITE_ROWS = 60

BLOCKERS = """
CREATE VIEW active_memberships AS
  SELECT m.id, m.organization_id, m.user_id, u.email, m.role
    FROM memberships m JOIN users u ON u.id = m.user_id;
CREATE VIEW organization_member_counts AS
  SELECT organization_id, count(*) AS members FROM active_memberships GROUP BY organization_id;
CREATE MATERIALIZED VIEW document_stats AS
  SELECT organization_id, count(*) AS documents, max(created_at) AS last_created
    FROM documents GROUP BY organization_id;
CREATE UNIQUE INDEX document_stats_organization_id ON document_stats (organization_id);
-- Hand-written helper returning uuid: its signature needs review after the conversion.
CREATE FUNCTION current_org_id() RETURNS uuid LANGUAGE sql STABLE AS
  $$ SELECT nullif(current_setting('app.current_org', true), '')::uuid $$;
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY documents_tenant_isolation ON documents
  USING (organization_id::text = current_setting('app.current_org', true));
CREATE FUNCTION documents_touch() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TRIGGER documents_organization_moved BEFORE UPDATE OF organization_id ON documents
  FOR EACH ROW EXECUTE FUNCTION documents_touch();
"""
PLANTED = {
    "views": ["active_memberships", "organization_member_counts"],
    "materialized_views": ["document_stats"],
    "policies": ["documents_tenant_isolation"],
    "triggers": ["documents_organization_moved"],
    "functions": ["current_org_id()"],
    "unreferenced_uuid_columns": ["audit_events.actor_id"],
}

PAYLOAD = {
    "text": "'{column} ' || g",
    "integer": "g",
    "bigint": "g * 100",
    "jsonb": "'{{}}'::jsonb",
    "timestamptz": "now() + g * interval '1 minute'",
    schema.KEY: "gen_random_uuid()",  # a reference without an FK (audit_events.actor_id)
}


def _numbered(table: str, alias: str, *, extra: str = "") -> str:
    """A parent table numbered from 0, to pick row (g * k) % n by a hash join on
    an integer: cheap at any size (unlike indexing into a large array per row)."""
    return (f"(SELECT id{extra}, row_number() OVER (ORDER BY id) - 1 AS rn FROM {table}) {alias}")


def _count(cur, table: str) -> int:
    cur.execute(f"SELECT count(*) FROM {table}")
    return cur.fetchone()[0]


def _core_rows(cur, scale: int) -> None:
    orgs, users, docs = (ROWS[t] * scale for t in ("organizations", "users", "documents"))
    cur.execute(f"""
        INSERT INTO organizations (id, name, slug)
        SELECT gen_random_uuid(), 'Organization ' || g, 'org-' || g FROM generate_series(1, {orgs}) g;
        INSERT INTO users (id, organization_id, email, display_name)
        SELECT gen_random_uuid(), o.id, 'user' || g || '@example.com', 'User ' || g
          FROM generate_series(1, {users}) g JOIN {_numbered("organizations", "o")} ON o.rn = g % {orgs};
        -- users <-> organizations is a cycle: owners are set once both exist.
        UPDATE organizations o SET owner_id = x.id
          FROM (SELECT DISTINCT ON (organization_id) organization_id, id FROM users
                 ORDER BY organization_id, email) x
         WHERE x.organization_id = o.id;
        UPDATE users u SET invited_by_id = x.inviter
          FROM (SELECT id, lag(id) OVER (PARTITION BY organization_id ORDER BY email) inviter FROM users) x
         WHERE x.id = u.id;
        INSERT INTO documents (id, organization_id, owner_id, title, body)
        SELECT gen_random_uuid(), u.organization_id, u.id, 'Document ' || g,
               (SELECT string_agg(md5(g::text || i), ' ') FROM generate_series(1, 30) i)
          FROM generate_series(1, {docs}) g
          JOIN {_numbered("users", "u", extra=", organization_id")} ON u.rn = g % {users};
        UPDATE documents d SET parent_id = x.prev
          FROM (SELECT id, lag(id) OVER (PARTITION BY organization_id ORDER BY title) prev FROM documents) x
         WHERE x.id = d.id AND right(d.title, 1) = '0';
    """)


def _satellite_rows(cur, table: schema.Table, count: int) -> None:
    if table.name == "document_shares":
        docs, users = _count(cur, "documents"), _count(cur, "users")
        cur.execute(f"""
            INSERT INTO document_shares (id, organization_id, document_id, shared_with_id, permission)
            SELECT gen_random_uuid(), d.organization_id, d.id, u.id, 'read'
              FROM generate_series(1, {count}) g
              JOIN {_numbered("documents", "d", extra=", organization_id")} ON d.rn = g % {docs}
              JOIN {_numbered("users", "u")} ON u.rn = (g * 7) % {users}""")
        return
    if table.name == "document_tags":
        tags = _count(cur, "tags")
        cur.execute(f"""
            INSERT INTO document_tags (document_id, tag_id)
            SELECT d.id, t.id FROM {_numbered("documents", "d")}
              JOIN {_numbered("tags", "t")} ON t.rn = d.rn % {tags}""")
        return
    fk_by_column = {fk.columns[0]: fk for fk in table.fks}
    columns, values, joins = [], [], []
    for position, (name, spec) in enumerate(table.columns):
        if name == "created_at":
            continue
        columns.append(name)
        if name == "id":
            values.append("gen_random_uuid()")
        elif name in fk_by_column:
            fk = fk_by_column[name]
            alias = f"p{position}"
            pick = f"{alias}.rn = (g * {position * 7 + 3}) % {_count(cur, fk.table)}"
            if fk.on_delete == "SET NULL" or "NOT NULL" not in spec:
                joins.append(f"LEFT JOIN {_numbered(fk.table, alias)} ON {pick} AND g % 10 <> 0")
            else:
                joins.append(f"JOIN {_numbered(fk.table, alias)} ON {pick}")
            values.append(f"{alias}.id")
        else:
            values.append(PAYLOAD[spec.split()[0]].format(column=name))
    cur.execute(f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {', '.join(values)} "
                f"FROM generate_series(1, {count}) g {' '.join(joins)}")


def build(url: str, *, scale: int = 1, key_type: str = "uuid", alembic_revision: str = BROKEN_REVISION) -> dict:
    """Create the schema, blockers, rows and alembic_version; returns counts."""
    if scale < 1:
        raise ValueError("scale must be >= 1")
    key_type = {"varchar": "varchar(36)"}.get(key_type, key_type)
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            for statement in schema.schema_sql(key_type, uuid_defaults=key_type == "uuid"):
                cur.execute(statement)
            cur.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))")
            cur.execute("INSERT INTO alembic_version VALUES (%s)", (alembic_revision,))
            _core_rows(cur, scale)
            for table in schema.TABLES:
                if table.name not in schema.KEYED_TABLES:
                    _satellite_rows(cur, table, SATELLITE_ROWS * scale)
            cur.execute(BLOCKERS)
            cur.execute("""
                SELECT (SELECT count(*) FROM pg_class WHERE relkind = 'r'
                           AND relnamespace = 'public'::regnamespace),
                       (SELECT count(*) FROM pg_constraint WHERE contype = 'f')""")
            tables, fks = cur.fetchone()
            rows = 0
            for table in [*schema.TABLES, schema.Table("alembic_version", [])]:
                cur.execute(f"SELECT count(*) FROM {table.name}")
                rows += cur.fetchone()[0]
        with conn.cursor() as cur:
            conn.autocommit = True
            cur.execute("ANALYZE")
        return {"tables": tables, "foreign_keys": fks, "rows": rows}
    finally:
        conn.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demoapp.fixture", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--key-type", default="uuid", choices=["uuid", "varchar"])
    parser.add_argument("--alembic-revision", default=BROKEN_REVISION)
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("error: set DATABASE_URL (the URL is read from the environment only)", file=sys.stderr)
        return 2
    counts = build(url, scale=args.scale, key_type=args.key_type, alembic_revision=args.alembic_revision)
    print(f"built: {counts['tables']} tables, {counts['foreign_keys']} foreign keys, {counts['rows']} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
