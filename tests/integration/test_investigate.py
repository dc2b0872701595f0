"""The investigation role end to end: ansible-playbook against the broken fixture."""

import glob
import json
import os
import stat

import psycopg2
import pytest

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
    ({"investigate_keys": "public.users.id"}, "investigate_keys"),
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
