"""The investigation role end to end: ansible-playbook against the broken fixture."""

import glob
import json
import os
import stat

import psycopg2
import pytest
from ansible.module_utils.investigation_report import REFERENCING_SHOWN

from tests.playbook_runner import run_playbook

PLAYBOOK = "playbooks/investigate.yml"
VERSIONS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "demoapp", "migrations", "versions")


def findings_of(report_dir):
    paths = sorted(glob.glob(os.path.join(str(report_dir), "test-env", "*", "findings.json")))
    assert paths, f"no findings.json under {report_dir}"
    with open(paths[-1]) as handle:
        return json.load(handle), paths[-1]


def catalog_snapshot(url):
    """What a read-only run must leave exactly as it was."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("""
            SELECT string_agg(format('%s.%s %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod)),
                              ',' ORDER BY c.relname, a.attnum)
              FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0""")
        columns = cur.fetchone()[0]
        cur.execute("SELECT string_agg(conname || pg_get_constraintdef(oid), ',' ORDER BY conname) "
                    "FROM pg_constraint")
        constraints = cur.fetchone()[0]
        cur.execute("SELECT version_num FROM alembic_version")
        return columns, constraints, cur.fetchall()


@pytest.fixture
def run(tmp_path):
    def runner(url, **kwargs):
        extra = {"recovery_database_url": url, "investigate_report_dir": str(tmp_path / "reports"),
                 "investigate_alembic_versions_dir": VERSIONS_DIR, **kwargs.pop("extra", {})}
        return run_playbook(PLAYBOOK, extra, **kwargs)
    runner.reports = tmp_path / "reports"
    return runner


def test_findings_on_the_broken_fixture(broken_db, run):
    before = catalog_snapshot(broken_db)
    result = run(broken_db)
    assert result.rc == 0, result.output[-3000:]
    assert "conversion needed: yes" in result.output
    findings, path = findings_of(run.reports)

    with psycopg2.connect(broken_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f'")
        assert findings["foreign_keys"]["count"] == cur.fetchone()[0]
        # Every view, materialized view, policy and column trigger planted in the
        # fixture is named, found independently of the reader's own query.
        cur.execute("""
            SELECT 'public.' || viewname FROM pg_views WHERE schemaname = 'public'
            UNION ALL SELECT 'public.' || matviewname FROM pg_matviews WHERE schemaname = 'public'
            UNION ALL SELECT policyname FROM pg_policies WHERE schemaname = 'public'
            UNION ALL SELECT tgname FROM pg_trigger WHERE NOT tgisinternal
                         AND (tgattr::int2[] <> '{}' OR tgqual IS NOT NULL)""")
        planted = {row[0] for row in cur.fetchall()}
    named = {b["name"] for b in findings["blockers"]} | {v["relation"] for v in findings["dependent_views"]}
    assert planted, "the fixture plants blockers"
    assert planted <= named, f"not named: {planted - named}"

    assert findings["alembic"]["true"] == "ba1a5bcdb110"
    assert findings["alembic"]["stored"] == ["f867c7e3d51c"]
    assert findings["alembic"]["head"] == "b354d12d1e7d"
    keys = {k["qualified"] for k in findings["mismatched_keys"]}
    assert {"public.users.id", "public.organizations.id", "public.documents.id"} <= keys
    assert findings["database"]["superuser"] is False
    assert findings["unreferenced_key_like_columns"], "the fixture plants a uuid column without FK"
    assert findings["functions_to_review"], "the fixture plants a function returning uuid"

    # findings.md lists each key's referencing FKs (table.column -> name), capped.
    with open(os.path.join(os.path.dirname(path), "findings.md")) as handle:
        markdown = handle.read()
    for key in [k for k in findings["mismatched_keys"] if k["referenced_by"]]:
        line = next(line for line in markdown.splitlines()
                    if line.startswith(f"- `{key['qualified']}` is referenced by:"))
        shown = key["referenced_by"][:REFERENCING_SHOWN]
        for fk in shown:
            assert f"`{fk['table']}.{','.join(fk['columns'])}` -> `{fk['name']}`" in line
        hidden = len(key["referenced_by"]) - len(shown)
        assert (f"... and {hidden} more" in line) == (hidden > 0), line
    users = next(k for k in findings["mismatched_keys"] if k["qualified"] == "public.users.id")
    with psycopg2.connect(broken_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confrelid = 'public.users'::regclass "
                    "AND conparentid = 0")
        assert len(users["referenced_by"]) == cur.fetchone()[0]

    # Reports are private, and hold no password.
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    password = psycopg2.extensions.parse_dsn(broken_db)["password"]
    for name in ("findings.json", "findings.md"):
        with open(os.path.join(os.path.dirname(path), name)) as handle:
            assert password not in handle.read()
    assert catalog_snapshot(broken_db) == before


def test_check_mode_and_rerun_change_nothing(broken_db, run):
    before = catalog_snapshot(broken_db)
    checked = run(broken_db, check=True, diff=True)
    assert checked.rc == 0, checked.output[-3000:]
    assert checked.recap()["changed"] == 0
    assert "conversion needed: yes" in checked.output
    again = run(broken_db)
    assert again.rc == 0 and again.recap()["changed"] == 0
    assert catalog_snapshot(broken_db) == before


def test_converted_database_needs_no_conversion(make_database, run):
    from demoapp import fixture

    url = make_database()
    fixture.build(url, scale=1, key_type="varchar(36)", alembic_revision="ba1a5bcdb110")
    result = run(url)
    assert result.rc == 0, result.output[-3000:]
    assert "conversion needed: no" in result.output
    findings, _ = findings_of(run.reports)
    assert findings["alembic"]["matches"] is True


def test_password_never_printed_at_vvv(broken_db, run):
    password = psycopg2.extensions.parse_dsn(broken_db)["password"]
    result = run(broken_db, verbosity=3)
    assert result.rc == 0, result.output[-3000:]
    assert password not in result.output


@pytest.mark.parametrize("extra, message", [
    ({"recovery_database_url": None}, "investigate_database_url"),
    ({"investigate_keys": "public.users.id"}, "must be YAML lists"),
    ({"investigate_schemas": "public"}, "must be YAML lists"),
    ({"investigate_alembic_revisions": [{"revision": "a", "tables": "users"}]}, "must be YAML lists"),
    ({"recovery_database_url": "postgresql://u:hunter22@h:99999/db"}, "invalid port"),
    ({"investigate_keys": ["users.id"]}, "schema.table.column"),
    ({"investigate_exact_count_max_bytes": "lots"}, "investigate_exact_count_max_bytes"),
    ({"investigate_alembic_versions_dir": "/nonexistent"}, "is not a directory"),
    ({"recovery_database_url": "mysql://u:hunter22@h/db"}, "must start with postgresql://"),
    ({"recovery_database_url": "postgresql://CHANGE_ME_user:CHANGE_ME_pw@h/db"}, "CHANGE_ME"),
])
def test_bad_input_is_rejected_before_anything_runs(broken_db, run, extra, message):
    url = extra.pop("recovery_database_url", broken_db)
    result = run(url, extra=extra) if url else run_playbook(
        PLAYBOOK, {"investigate_report_dir": str(run.reports), **extra})
    assert result.rc != 0
    assert message in result.output, result.output[-3000:]
    assert "Read the catalog" not in result.output or "skipping" in result.output
    assert not run.reports.exists() or not list(run.reports.rglob("findings.json"))
    assert "hunter22" not in result.output


def test_wrong_password_and_unreachable_server_fail_clearly(broken_db, run, pg_cluster):
    password = psycopg2.extensions.parse_dsn(broken_db)["password"]
    wrong = broken_db.replace(password, "not-the-password")
    result = run(wrong)
    assert result.rc != 0
    assert "password rejected for app_owner@127.0.0.1" in result.output
    unreachable = broken_db.replace(f":{pg_cluster.port}/", ":1/")
    result = run(unreachable)
    assert result.rc != 0
    assert "database server unreachable at 127.0.0.1:1" in result.output
    assert password not in result.output


def admin(pg_cluster, url):
    """A superuser connection to the test's own database (only to plant what the owner cannot)."""
    return psycopg2.connect(pg_cluster.admin_url(psycopg2.extensions.parse_dsn(url)["dbname"]))


def execute(url, statements):
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(statements)
    conn.close()


PLANTED = """
ALTER TABLE users ADD COLUMN id_text text GENERATED ALWAYS AS (id::text) STORED;
CREATE RULE memberships_keep_orphans AS ON DELETE TO memberships
  WHERE OLD.user_id IS NULL DO INSTEAD NOTHING;
CREATE PUBLICATION documents_by_org FOR TABLE documents WHERE (organization_id IS NOT NULL)
  WITH (publish = 'insert');
CREATE FUNCTION users_noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER users_organization_changed BEFORE UPDATE ON users FOR EACH ROW
  WHEN (OLD.organization_id IS DISTINCT FROM NEW.organization_id) EXECUTE FUNCTION users_noop();
"""


def test_planted_rule_generated_column_publication_and_when_trigger_are_named(broken_db, run):
    execute(broken_db, PLANTED)  # on this test's copy only
    result = run(broken_db)
    assert result.rc == 0, result.output[-3000:]
    findings, path = findings_of(run.reports)
    named = {(b["kind"], b["name"]) for b in findings["blockers"]}
    expected = {("generated column", "id_text"), ("rule", "memberships_keep_orphans"),
                ("publication", "documents_by_org"), ("trigger", "users_organization_changed")}
    assert expected <= named, f"not named: {expected - named}"
    with open(os.path.join(os.path.dirname(path), "findings.md")) as handle:
        markdown = handle.read()
    for _, name in expected:
        assert f"| {name} |" in markdown


def test_row_counts_are_estimates_above_the_threshold(broken_db, run):
    result = run(broken_db, extra={"investigate_exact_count_max_bytes": 0})
    assert result.rc == 0, result.output[-3000:]
    findings, path = findings_of(run.reports)
    with psycopg2.connect(broken_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT relname, GREATEST(reltuples, 0)::bigint FROM pg_class "
                    "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace "
                    "AND pg_total_relation_size(oid) > 0")
        planner = dict(cur.fetchall())
    rows = {t["table"]: t for t in findings["tables"]}
    assert planner
    for name, estimate in planner.items():
        assert rows[name]["rows_exact"] is False and rows[name]["rows"] == estimate, name
    with open(os.path.join(os.path.dirname(path), "findings.md")) as handle:
        assert f"| public.users | ~{planner['users']} (estimate) |" in handle.read()


def test_disk_verdict_fits_and_does_not_fit(broken_db, run):
    with psycopg2.connect(broken_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_database_size(current_database())")
        database_bytes = cur.fetchone()[0]
    verdicts = {}
    for label, disk_gb in (("small", database_bytes / 2 / 1024 ** 3), ("large", 100)):
        result = run(broken_db, extra={"investigate_disk_size_gb": disk_gb})
        assert result.rc == 0, result.output[-3000:]
        findings, _ = findings_of(run.reports)
        assert findings["space"]["disk_bytes"] == int(disk_gb * 1024 ** 3)
        verdicts[label] = findings
        for old in run.reports.rglob("findings.*"):
            old.unlink()
    assert verdicts["small"]["space"]["fits"] is False
    assert any("more disk than the plan has free" in w for w in verdicts["small"]["warnings"])
    space = verdicts["large"]["space"]
    assert space["fits"] is True
    assert space["database_bytes"] + space["rewrite_needs_bytes"] < space["disk_bytes"]
    assert not any("more disk" in w for w in verdicts["large"]["warnings"])


def test_revision_map_from_inventory(broken_db, run):
    revisions = [  # a hand-written map, as an inventory would hold it
        {"revision": "ba1a5bcdb110", "down_revision": None, "tables": ["organizations", "users", "documents"]},
        {"revision": "f867c7e3d51c", "down_revision": "ba1a5bcdb110", "tables": ["document_questions"]},
    ]
    result = run(broken_db, extra={"investigate_alembic_revisions": revisions,
                                   "investigate_alembic_versions_dir": ""})
    assert result.rc == 0, result.output[-3000:]
    alembic = findings_of(run.reports)[0]["alembic"]
    assert [w["revision"] for w in alembic["walk"]] == ["ba1a5bcdb110", "f867c7e3d51c"]
    assert alembic["true"] == "ba1a5bcdb110" and alembic["head"] == "f867c7e3d51c"
    assert alembic["walk"][1]["missing"] == ["document_questions"]
    assert alembic["stored"] == ["f867c7e3d51c"] and alembic["matches"] is False


def test_contradictory_history_stops_the_role(broken_db, run):
    # A later revision's table without the earlier ones' (folders, ...).
    execute(broken_db, "CREATE TABLE document_questions (id varchar(36) PRIMARY KEY)")
    result = run(broken_db)
    assert result.rc != 0
    assert "The schema contradicts the Alembic history: revision f867c7e3d51c" in result.output
    assert "earlier revision 3c1d2e4f5a6b is missing ['folders']" in result.output
    findings, _ = findings_of(run.reports)  # the report is written first, for the operator
    assert findings["alembic"]["contradictions"]


def test_other_sessions_and_long_transactions_are_warned(broken_db, run):
    other = psycopg2.connect(broken_db)
    try:
        with other.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")  # and leaves its transaction open
            pid = cur.fetchone()[0]
        result = run(broken_db, extra={"investigate_long_transaction_seconds": 0})
    finally:
        other.close()
    assert result.rc == 0, result.output[-3000:]
    findings, _ = findings_of(run.reports)
    session = next(s for s in findings["sessions"] if s["pid"] == pid)
    assert session["long_transaction"] and session["state"] == "idle in transaction"
    assert any(w.startswith(f"session {pid} (app_owner) has a transaction open") for w in findings["warnings"])


def test_a_database_error_mid_investigation_is_one_clear_message(broken_db, run, pg_cluster):
    # A table the owner role may not read, as a hand-made production table can be.
    with admin(pg_cluster, broken_db) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE public.ops_notes (id int)")
    conn.close()
    result = run(broken_db, verbosity=1)
    assert result.rc != 0
    assert "the investigation stopped: permission denied for table ops_notes (SQLSTATE 42501)" in result.output
    assert "Traceback" not in result.output
    assert psycopg2.extensions.parse_dsn(broken_db)["password"] not in result.output
    assert not list(run.reports.rglob("findings.json"))


def test_inputs_are_checked_before_render_is_called(broken_db, run):
    render = {"render_postgres_id": "dpg-d0simulateddb000000-a", "render_api_key": "rnd_not-a-real-key",
              "render_api_base_url": "http://127.0.0.1:1/v1"}  # nothing listens: a call would fail
    result = run(broken_db, extra={**render, "investigate_keys": ["users.id"]})
    assert result.rc != 0
    assert "schema.table.column" in result.output
    assert "Read the Render Postgres plan" not in result.output
    missing_key = run(broken_db, extra={**render, "render_api_key": ""})
    assert missing_key.rc != 0
    assert "render_api_key is not set: it must be a Render API key" in missing_key.output
    assert "Read the Render Postgres plan" not in missing_key.output
    # With good input the Render read does run, after the checks.
    unreachable = run(broken_db, extra=render)
    assert unreachable.rc != 0
    assert "Read the Render Postgres plan" in unreachable.output
    assert "rnd_not-a-real-key" not in unreachable.output
