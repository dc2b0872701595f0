"""What hand-built databases carry around their uuid keys (issue 10), each
converted with the defaults on a real server as the non-superuser owner,
check mode first, to the catalog of the same schema built natively with
varchar(36) keys, then used as the application would: a generated column
over a key, a domain-typed FK column, sentinel uuid literals in a view, a
partial index, an index expression, checks, a policy, a trigger WHEN and a
default, and an audit trigger copying a converted id into a uuid column."""

from contextlib import closing

import psycopg2
import pytest
from ansible.module_utils.key_conversion_plan import ConversionRequest
from ansible.module_utils.key_conversion_run import ConversionError, RunOptions, convert, plan_only

from tests.db_connections import app_conn
from tests.db_fingerprint import fingerprint
from tests.integration.convert_objects_support import (
    VARCHAR,
    assert_same_catalog,
    build,
    changed_types,
    convert_checked,
    run_sql,
)

SYSTEM = "aaaaaaaa-0000-4000-8000-000000000001"  # a sentinel id, as hand-built databases have
# The module's defaults, and the levers that move work past the COMMIT.
LEVERS = [{}, {"fk_validation": "after_commit", "index_build": "after_commit", "value_check": "shape"}]


def columns_in_order(url: str, table: str) -> list[str]:
    with closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                    "AND NOT attisdropped ORDER BY attnum", (table,))
        return [row[0] for row in cur.fetchall()]


def rows(url: str, query: str, role: str | None = None) -> list[tuple]:
    with closing(app_conn(url)) as conn, conn.cursor() as cur:
        if role:
            cur.execute(f'SET ROLE "{role}"')
        cur.execute(query)
        result = cur.fetchall()
        conn.rollback()
        return result


# -- 1. a stored generated column over a key -----------------------------------

GENERATED = """
CREATE TABLE accounts (id {key} PRIMARY KEY DEFAULT gen_random_uuid(), name text);
CREATE TABLE "Api Keys" (id {key} PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id {key} NOT NULL REFERENCES accounts(id), label text NOT NULL,
  "Key Ref" text GENERATED ALWAYS AS (account_id::text || ':' || label) STORED NOT NULL,
  note text);
CREATE UNIQUE INDEX api_keys_ref ON "Api Keys" ("Key Ref");
CREATE INDEX "Api Keys Ref Lower" ON "Api Keys" (lower("Key Ref"));
COMMENT ON INDEX api_keys_ref IS 'one per account and label';
COMMENT ON COLUMN "Api Keys"."Key Ref" IS 'account:label';
ALTER TABLE "Api Keys" ALTER COLUMN "Key Ref" SET STATISTICS 500;
ALTER TABLE "Api Keys" ADD CONSTRAINT key_ref_long CHECK (length("Key Ref") > 37);
GRANT SELECT (id, "Key Ref") ON "Api Keys" TO "{reader}";
INSERT INTO accounts (name) SELECT 'a' || g FROM generate_series(1, 5) g;
INSERT INTO "Api Keys" (account_id, label, note) SELECT id, 'k' || name, 'n' FROM accounts;
"""


@pytest.mark.parametrize("index_build", ["in_transaction", "after_commit"])
def test_generated_column_over_a_key_is_added_back_with_everything_attached(
        make_database, make_role, index_build):
    reader = make_role(member=True)
    url, native = build(make_database, GENERATED, reader=reader)
    values = rows(url, 'SELECT id::text, "Key Ref" FROM "Api Keys" ORDER BY 1')
    outcome, before, after = convert_checked(url, ConversionRequest(index_build=index_build))
    plan = outcome["plan"]
    assert [g["column"] for g in plan.generated] == ["Key Ref"]
    assert any('generated column Key Ref on public."Api Keys"' in n and "last column" in n for n in plan.notes)
    alter = dict(plan.alter_sql)['public."Api Keys"']
    assert alter.startswith('ALTER TABLE public."Api Keys" DROP COLUMN "Key Ref", ALTER COLUMN')
    assert "ADD COLUMN \"Key Ref\" text GENERATED ALWAYS AS" in alter and "STORED NOT NULL" in alter
    # Its index (unique too), check, grant, comment and statistics target are back:
    # the catalog is the natively built one's.
    assert_same_catalog(native, after)
    assert set(changed_types(before, after)) == {
        "public.accounts.id", 'public."Api Keys".id', 'public."Api Keys".account_id'}
    with closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute("""SELECT attstattarget FROM pg_attribute WHERE attrelid = '"Api Keys"'::regclass
                        AND attname = 'Key Ref'""")
        assert cur.fetchone() == (500,)
    # It moved to the end; its values are the same.
    assert columns_in_order(url, '"Api Keys"') == ["id", "account_id", "label", "note", "Key Ref"]
    assert rows(url, 'SELECT id, "Key Ref" FROM "Api Keys" ORDER BY 1') == values
    # The application: insert (computed), a duplicate refused by the unique index, read as the reader.
    with closing(app_conn(url)) as conn, conn.cursor() as cur:
        cur.execute("""INSERT INTO "Api Keys" (account_id, label) SELECT id, 'new' FROM accounts LIMIT 1
                       RETURNING "Key Ref", account_id""")
        ref, account = cur.fetchone()
        assert ref == f"{account}:new"
        with pytest.raises(psycopg2.errors.UniqueViolation, match="api_keys_ref"):
            cur.execute("""INSERT INTO "Api Keys" (account_id, label) VALUES (%s, 'new')""", (account,))
        conn.rollback()
    assert len(rows(url, 'SELECT "Key Ref" FROM "Api Keys"', role=reader)) == 5
    # A second run changes nothing.
    with closing(app_conn(url)) as conn:
        assert convert(conn, ConversionRequest(index_build=index_build), RunOptions())["changed"] is False


def test_a_generated_copy_of_a_key_and_a_generated_flag_over_a_literal_convert_too(make_database):
    url = make_database()
    run_sql(url, "CREATE TABLE t (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
                 "copy_id uuid GENERATED ALWAYS AS (id) STORED, "
                 f"is_system boolean GENERATED ALWAYS AS (id = '{SYSTEM}') STORED);"
                 f"INSERT INTO t DEFAULT VALUES; INSERT INTO t VALUES ('{SYSTEM}');")
    outcome, before, after = convert_checked(url, ConversionRequest())
    assert sorted(g["column"] for g in outcome["plan"].generated) == ["copy_id", "is_system"]
    assert changed_types(before, after) == {"public.t.id": VARCHAR, "public.t.copy_id": VARCHAR}
    assert rows(url, f"SELECT id = copy_id, is_system, id = '{SYSTEM}' FROM t ORDER BY 2") == [
        (True, False, False), (True, True, True)]
    with closing(app_conn(url)) as conn:
        assert convert(conn, ConversionRequest(), RunOptions())["changed"] is False


# -- 2. an FK column whose type is a domain over uuid --------------------------

DOMAINS = """
{domains}
CREATE TABLE users (id {key} PRIMARY KEY DEFAULT gen_random_uuid(), email text);
CREATE TABLE sessions (id {key} PRIMARY KEY DEFAULT gen_random_uuid(), user_id {user_ref} REFERENCES users(id),
                       request_id {request_ref});
CREATE VIEW user_sessions AS SELECT s.id, s.user_id, u.email FROM sessions s JOIN users u ON u.id = s.user_id;
INSERT INTO users (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 5) g;
INSERT INTO sessions (user_id) SELECT id FROM users;
"""
DOMAIN_SQL = """
CREATE DOMAIN user_ref AS uuid NOT NULL CHECK (VALUE <> '00000000-0000-0000-0000-000000000000');
CREATE DOMAIN request_ref AS uuid DEFAULT gen_random_uuid();
"""


@pytest.mark.parametrize("levers", LEVERS, ids=["defaults", "after_commit"])
def test_domain_typed_fk_column_converts_with_its_not_null_and_default(make_database, levers):
    url = make_database()
    run_sql(url, DOMAINS.format(domains=DOMAIN_SQL, key="uuid", user_ref="user_ref", request_ref="request_ref"))
    native_url = make_database()
    # The domains stay (unused) after the conversion: the native schema has them too.
    run_sql(native_url, DOMAINS.format(domains=DOMAIN_SQL, key="varchar(36)", user_ref="varchar(36) NOT NULL",
                                       request_ref="varchar(36) DEFAULT gen_random_uuid()"))
    outcome, before, after = convert_checked(url, ConversionRequest(**levers))
    plan = outcome["plan"]
    assert {c["qualified"]: c["type"] for c in plan.columns if c.get("domain")} == {
        "public.sessions.user_id": "public.user_ref", "public.sessions.request_id": "public.request_ref"}
    assert any(n.startswith("domain public.user_ref is no longer used") for n in plan.notes)
    assert any("public.sessions.user_id is of domain public.user_ref, whose checks" in n for n in plan.notes)
    assert_same_catalog(fingerprint(native_url, extended=True), after)
    assert after["content"] == before["content"]
    assert changed_types(before, after) == {
        "public.users.id": VARCHAR, "public.sessions.id": VARCHAR, "public.sessions.user_id": VARCHAR,
        "public.sessions.request_id": VARCHAR, "public.user_sessions.id": VARCHAR,
        "public.user_sessions.user_id": VARCHAR}
    with closing(app_conn(url)) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO sessions (user_id) SELECT id FROM users LIMIT 1 RETURNING request_id")
        assert len(cur.fetchone()[0]) == 36
        with pytest.raises(psycopg2.errors.NotNullViolation):
            cur.execute("INSERT INTO sessions (user_id) VALUES (NULL)")
        conn.rollback()
        assert convert(conn, ConversionRequest(**levers), RunOptions())["changed"] is False


# -- 3. sentinel uuid literals in dependents ----------------------------------

LITERALS = """
CREATE TABLE "Users" (id {key} PRIMARY KEY DEFAULT gen_random_uuid(), email text);
CREATE TABLE posts (id {key} PRIMARY KEY DEFAULT gen_random_uuid(),
  author_id {key} NOT NULL DEFAULT '{system}'::{key} REFERENCES "Users"(id), body text,
  CONSTRAINT not_nil CHECK (id <> '00000000-0000-0000-0000-000000000000'::{key}),
  CONSTRAINT "System Posts Short" CHECK (author_id <> '{upper}'::{key} OR length(body) < 100));
COMMENT ON CONSTRAINT "System Posts Short" ON posts IS 'system notices are short';
CREATE INDEX posts_by_people ON posts (author_id) WHERE author_id <> '{system}'::{key};
CREATE INDEX posts_is_system ON posts ((author_id = '{system}'::{key}));
CREATE VIEW human_posts AS SELECT p.id, p.author_id, p.body FROM posts p
  WHERE p.author_id NOT IN ('{system}'::{key}, 'aaaaaaaa-0000-4000-8000-000000000002'::{key});
GRANT SELECT ON human_posts TO "{reader}";
ALTER TABLE posts ENABLE ROW LEVEL SECURITY;
CREATE POLICY people_only ON posts FOR SELECT TO "{reader}" USING (author_id <> '{system}'::{key});
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'system posts are read-only'; END$$;
CREATE TRIGGER system_posts_read_only BEFORE UPDATE ON posts FOR EACH ROW
  WHEN (OLD.author_id = '{system}'::{key}) EXECUTE FUNCTION refuse();
INSERT INTO "Users" (id, email) VALUES ('{system}', 'system@example.com');
INSERT INTO "Users" (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 5) g;
INSERT INTO posts (author_id, body) SELECT id, 'hello from ' || email FROM "Users";
"""


@pytest.mark.parametrize("levers", LEVERS, ids=["defaults", "after_commit"])
def test_uuid_literals_compared_with_keys_are_retyped_everywhere(make_database, make_role,
                                                                 levers):
    reader = make_role(member=True)
    url = make_database()
    run_sql(url, LITERALS.format(key="uuid", system=SYSTEM, upper=SYSTEM.upper(), reader=reader))
    native_url = make_database()
    run_sql(native_url, LITERALS.format(key="varchar(36)", system=SYSTEM, upper=SYSTEM, reader=reader))
    run_sql(url, f'GRANT SELECT ON posts TO "{reader}"')
    run_sql(native_url, f'GRANT SELECT ON posts TO "{reader}"')
    outcome, before, after = convert_checked(url, ConversionRequest(**levers))
    plan = outcome["plan"]
    shown = {r["object"]: r for r in plan.rewritten}
    assert set(shown) == {
        "view public.human_posts", "policy people_only on public.posts",
        "trigger system_posts_read_only on public.posts", "check constraint not_nil on public.posts",
        "check constraint System Posts Short on public.posts",
        "index public.posts_by_people", "index public.posts_is_system", "default of public.posts.author_id"}
    # The upper-case literal comes out as uuid's own text: lower-case.
    assert f"'{SYSTEM}'::character varying(36)" in shown["check constraint System Posts Short on public.posts"]["after"]
    assert "'::uuid" not in " ".join(r["after"] for r in plan.rewritten)
    assert_same_catalog(fingerprint(native_url, extended=True), after)
    assert after["content"] == before["content"]
    # The application: the trigger's WHEN still protects, the view and the policy still filter.
    with closing(app_conn(url)) as conn, conn.cursor() as cur:
        cur.execute("UPDATE posts SET body = 'edited' WHERE author_id <> %s", (SYSTEM,))
        assert cur.rowcount == 5
        with pytest.raises(psycopg2.errors.RaiseException, match="read-only"):
            cur.execute("UPDATE posts SET body = 'edited' WHERE author_id = %s", (SYSTEM,))
        conn.rollback()
        cur.execute("""INSERT INTO posts (body) VALUES ('notice') RETURNING author_id""")
        assert cur.fetchone() == (SYSTEM,)
        conn.rollback()
    assert len(rows(url, "SELECT * FROM human_posts", role=reader)) == 5
    assert len(rows(url, "SELECT * FROM posts", role=reader)) == 5
    with closing(app_conn(url)) as conn:
        assert convert(conn, ConversionRequest(**levers), RunOptions())["changed"] is False


# -- 4. an audit trigger writing a converted id into a uuid column --------------

AUDIT = """
CREATE TABLE documents (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), title text);
CREATE TABLE audit_log (id bigserial PRIMARY KEY, row_id uuid, action text);
CREATE FUNCTION audit_documents() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO audit_log (row_id, action) VALUES (NEW.id, TG_OP); RETURN NEW; END$$;
CREATE TRIGGER documents_audit AFTER INSERT OR UPDATE ON documents
  FOR EACH ROW EXECUTE FUNCTION audit_documents();
INSERT INTO documents (title) SELECT 't' || g FROM generate_series(1, 5) g;
"""
WRITER = ("trigger documents_audit on public.documents running function public.audit_documents() "
          "names public.audit_log.row_id")


def test_audit_trigger_into_a_uuid_column_is_converted_by_default_and_refused_with_keys(make_database):
    url = make_database()
    run_sql(url, AUDIT)
    before = fingerprint(url)
    with closing(app_conn(url)) as conn:
        keys = plan_only(conn, ConversionRequest(scope="keys"))["plan"]
        assert keys.writers == [WRITER]
        assert any(r.startswith(WRITER) for r in keys.refusals)
        with pytest.raises(ConversionError, match="refused before any change: trigger documents_audit"):
            convert(conn, ConversionRequest(scope="keys"), RunOptions())
    assert fingerprint(url) == before
    # The default converts the audit column too: the application's UPDATE works.
    with closing(app_conn(url)) as conn:
        outcome = convert(conn, ConversionRequest(), RunOptions())
        assert "public.audit_log.row_id" in [c["qualified"] for c in outcome["plan"].columns]
        with conn.cursor() as cur:
            cur.execute("UPDATE documents SET title = title || '!' RETURNING id")
            updated = {row[0] for row in cur.fetchall()}
            cur.execute("SELECT row_id FROM audit_log WHERE action = 'UPDATE'")
            assert {row[0] for row in cur.fetchall()} == updated and len(updated) == 5
        conn.commit()
        assert convert(conn, ConversionRequest(), RunOptions())["changed"] is False


def test_allowed_unconverted_writer_is_what_breaks_the_update(make_database):
    """Why keys refuses: allowed, the run converts, and the trigger then fails."""
    url = make_database()
    run_sql(url, AUDIT)
    with closing(app_conn(url)) as conn:
        outcome = convert(conn, ConversionRequest(scope="keys", allow_unconverted_writers=True), RunOptions())
        assert outcome["changed"] and any(n.startswith(WRITER) for n in outcome["plan"].notes)
        with conn.cursor() as cur, pytest.raises(psycopg2.errors.DatatypeMismatch, match="row_id"):
            cur.execute("UPDATE documents SET title = 'x'")
        conn.rollback()


def test_a_writer_into_a_uuid_column_outside_the_schemas_is_refused_even_with_scope_all(make_database):
    """scope all converts the schemas it is given; a trigger copying a converted
    id into a table of another schema still breaks. (A uuid array no function
    names is no writer's concern.)"""
    url = make_database()
    run_sql(url, AUDIT.replace("CREATE TABLE audit_log", 'CREATE SCHEMA "Audit"; CREATE TABLE "Audit".audit_log')
            .replace("INSERT INTO audit_log", 'INSERT INTO "Audit".audit_log')
            + "ALTER TABLE documents ADD COLUMN related uuid[];")
    with closing(app_conn(url)) as conn:
        plan = plan_only(conn, ConversionRequest())["plan"]
    assert plan.writers == ['trigger documents_audit on public.documents running function '
                            'public.audit_documents() names "Audit".audit_log.row_id']
    assert any(r.startswith(plan.writers[0]) for r in plan.refusals)
    with closing(app_conn(url)) as conn:
        widened = plan_only(conn, ConversionRequest(schemas=["public", "Audit"]))["plan"]
    assert widened.writers == [] and widened.refusals == []


# -- the role, as an operator runs it ------------------------------------------

def test_the_playbook_shows_retyped_text_in_check_mode_and_stops_on_a_writer_by_name(make_database, make_role,
                                                                                    tmp_path):
    from tests.playbook_runner import run_playbook

    reader = make_role(member=True)
    url = make_database()
    run_sql(url, LITERALS.format(key="uuid", system=SYSTEM, upper=SYSTEM.upper(), reader=reader) + AUDIT)
    extra = {"recovery_database_url": url, "convert_keys_report_dir": str(tmp_path / "reports"),
             "convert_keys_require_backup": False}
    before = fingerprint(url)
    planned = run_playbook("playbooks/convert.yml", extra, check=True, diff=True)
    assert planned.rc == 0, planned.output[-3000:]
    assert "dependents with uuid constants retyped: view public.human_posts" in " ".join(planned.output.split())
    assert f"'{SYSTEM}'::character varying(36)" in planned.output  # the after text, under --diff
    assert fingerprint(url) == before
    # scope keys: the audit trigger is named in check mode, and the run stops there too.
    keys = {**extra, "convert_keys_scope": "keys"}
    for check in (True, False):
        refused = run_playbook("playbooks/convert.yml", keys, check=check)
        assert refused.rc != 0
        assert "trigger documents_audit on public.documents running function" in refused.output
        assert fingerprint(url) == before
    converted = run_playbook("playbooks/convert.yml", extra)
    assert converted.rc == 0, converted.output[-3000:]
    again = run_playbook("playbooks/convert.yml", extra)
    assert again.rc == 0 and again.recap()["changed"] == 0, again.output[-3000:]
