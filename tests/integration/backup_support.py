"""What the backup tests (test_backup*.py) share: a database to back up, the
connection options the backup functions take, how to compare databases, and
how to damage a backup."""

from __future__ import annotations

import os
import uuid

import psycopg2
from ansible.module_utils.pg_backup_manifest import load_manifest, write_manifest

from localenv import cluster as pg

# A small schema with what a restore must bring back: uuid keys and FKs across
# schemas, quoted names, a partitioned table, views, a materialized view, a
# policy, a trigger, a function, an enum, a generated column, sequences.
SCHEMA = """
CREATE SCHEMA "Billing";
CREATE TYPE plan AS ENUM ('free', 'pro');
CREATE TABLE organizations (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL,
                            plan plan NOT NULL DEFAULT 'free');
CREATE TABLE users (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                    organization_id uuid NOT NULL REFERENCES organizations(id),
                    email text UNIQUE, email_lower text GENERATED ALWAYS AS (lower(email)) STORED);
CREATE TABLE documents (id bigserial PRIMARY KEY, owner_id uuid REFERENCES users(id) ON DELETE CASCADE,
                        body text, created timestamptz NOT NULL DEFAULT now());
CREATE TABLE "Billing"."Invoices" ("Org Id" uuid REFERENCES organizations(id), amount numeric(12, 2)
                                   CHECK (amount > 0));
CREATE TABLE events (id bigint NOT NULL, user_id uuid, payload jsonb) PARTITION BY RANGE (id);
CREATE TABLE events_low PARTITION OF events FOR VALUES FROM (0) TO (500);
CREATE TABLE events_high PARTITION OF events FOR VALUES FROM (500) TO (1000000);
CREATE INDEX ON documents (owner_id);
CREATE VIEW active_users AS SELECT u.id, o.name FROM users u JOIN organizations o ON o.id = u.organization_id;
CREATE MATERIALIZED VIEW document_counts AS SELECT owner_id, count(*) AS n FROM documents GROUP BY owner_id;
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY documents_owner ON documents USING (owner_id IS NOT NULL);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.created := now(); RETURN NEW; END$$;
CREATE TRIGGER documents_touch BEFORE UPDATE OF body ON documents FOR EACH ROW EXECUTE FUNCTION touch();
INSERT INTO organizations (name, plan) SELECT 'org ' || g, (ARRAY['free', 'pro'])[1 + g % 2]::plan
  FROM generate_series(1, 20) g;
INSERT INTO users (organization_id, email)
  SELECT id, 'User' || row_number() OVER () || '@example.com' FROM organizations, generate_series(1, 10);
INSERT INTO documents (owner_id, body) SELECT id, repeat(md5(id::text), 3) FROM users, generate_series(1, 3);
INSERT INTO "Billing"."Invoices" SELECT id, 10.5 FROM organizations;
INSERT INTO events SELECT g, NULL, jsonb_build_object('n', g) FROM generate_series(1, 900) g;
REFRESH MATERIALIZED VIEW document_counts;
"""


def _has_demoapp() -> bool:
    try:
        import demoapp.fixture  # noqa: F401
    except ImportError:
        return False
    return True


def new_source(request, pg_cluster) -> str:
    """A database to back up: a copy of the broken production-shaped fixture when
    demoapp exists, else the schema above. Owned by the app role (SSL, SCRAM)."""
    name = f"bk_{uuid.uuid4().hex[:10]}"
    if _has_demoapp():
        pg.create_database(pg_cluster, name, template=request.getfixturevalue("broken_template"))
    else:
        pg.create_database(pg_cluster, name)
        with psycopg2.connect(pg_cluster.url(name)) as conn, conn.cursor() as cur:
            cur.execute(SCHEMA)
        conn.close()
    request.addfinalizer(lambda: pg.drop_database(pg_cluster, name))
    return pg_cluster.url(name)


def params(url: str) -> dict:
    return {"database_url": url, "connect_timeout": 10}


def password_of(url: str) -> str:
    return psycopg2.extensions.parse_dsn(url)["password"]


def table_hashes(url: str) -> dict:
    """Per table: row count and an md5 over its rows' text, in a stable order."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SET search_path = ''")
        cur.execute("SELECT oid::regclass::text FROM pg_class WHERE relkind = 'r' "
                    "AND relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,"
                    " 'pg_toast'::regnamespace) ORDER BY 1")
        names = [row[0] for row in cur.fetchall()]
        hashes = {}
        for name in names:
            cur.execute(f"SELECT count(*), md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM {name} t")
            hashes[name] = cur.fetchone()
    conn.close()
    return hashes


# -- damaging a backup -------------------------------------------------------------

def append_a_byte(path):
    """One byte more at the end of a custom-format dump."""
    with open(os.path.join(path, "dump.pgc"), "ab") as handle:
        handle.write(b"\0")


def flip_a_byte(path, rel="dump.pgc"):
    """One bit flipped in the middle of a file, its size unchanged."""
    file = os.path.join(path, rel)
    with open(file, "r+b") as handle:
        handle.seek(os.path.getsize(file) // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x01]))


def reseal(path, **changes):
    """The manifest changed and sealed again: its own checksum passes."""
    manifest = load_manifest(path)
    write_manifest(path, {k: v for k, v in manifest.items() if k != "manifest_checksum"} | changes)
