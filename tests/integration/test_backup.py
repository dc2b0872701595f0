"""Verified backups end to end on a real server: dump, every verification level,
the mutilation matrix (after pg_verifybackup's 003_corruption.pl), the gate,
retention, idempotence, check mode, restore.yml, and secrets at -vvv."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid

import psycopg2
import pytest
from ansible.module_utils.pg_backup_dump import take_backup
from ansible.module_utils.pg_backup_manifest import (
    identity_of,
    load_manifest,
    passed_levels,
    read_verifications,
    write_manifest,
)
from ansible.module_utils.pg_backup_policy import prune
from ansible.module_utils.pg_backup_restore import restore_backup
from ansible.module_utils.pg_backup_store import MANIFEST, VERIFICATIONS, BackupError, partial_name
from ansible.module_utils.pg_backup_verification import verify_backup
from ansible.module_utils.pg_connection import resolve_connection

from localenv import cluster as pg
from tests.playbook_runner import ROOT, run_playbook

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


@pytest.fixture(scope="module")
def source(request, pg_cluster):
    return new_source(request, pg_cluster)


@pytest.fixture(scope="module")
def scratch(pg_cluster):
    return params(pg_cluster.admin_url())


@pytest.fixture(scope="module")
def backups(source, tmp_path_factory):
    """One custom-format and one directory-format (-j 2) backup of the source, taken once."""
    store = str(tmp_path_factory.mktemp("store"))
    custom = take_backup(params(source), backup_dir=store, label="env", backup_id="custom")
    directory = take_backup(params(source), backup_dir=store, label="env", backup_id="directory",
                            fmt="directory", jobs=2)
    return {"store": store, "custom": custom["path"], "directory": directory["path"]}


@pytest.fixture
def copy_of(backups, tmp_path):
    """A fresh copy of a pristine backup to mutilate."""
    def factory(kind: str) -> str:
        target = str(tmp_path / f"{kind}-{uuid.uuid4().hex[:6]}")
        shutil.copytree(backups[kind], target, ignore=shutil.ignore_patterns(VERIFICATIONS))
        return target
    return factory


# -- dump and every verification level -----------------------------------------

@pytest.mark.parametrize("kind", ["custom", "directory"])
def test_every_level_passes_and_the_manifest_is_exact(kind, backups, source, scratch):
    path = backups[kind]
    manifest = load_manifest(path)
    identity = {"host": "127.0.0.1", "port": resolve_connection(params(source))["login_port"],
                "name": resolve_connection(params(source))["login_db"]}
    assert manifest["database"] == identity
    assert manifest["format"] == kind
    assert manifest["toc_entries"] > 10
    assert manifest["pg_dump_major"] >= manifest["server_major"]
    assert manifest["files"] and all(len(f["sha256"]) == 64 for f in manifest["files"])
    if kind == "directory":
        assert any(f["path"] == "dump/toc.dat" for f in manifest["files"])
    counts = {name: rows for name, (rows, _) in table_hashes(source).items()}
    assert {t["name"]: t["rows"] for t in manifest["tables"]} == counts
    assert manifest["rows"] == sum(counts.values()) > 0
    assert manifest["objects"]["table"] >= 5 and manifest["objects"]["constraint"] >= 5

    for level in ("checksum", "toc", "restore"):
        result = verify_backup(path, level, identity=identity, scratch=scratch, reuse=False)
        assert result["checked"][-1] == level
    assert result["restore"]["rows_checked"] == manifest["rows"]
    assert result["restore"]["tables_checked"] == len(manifest["tables"])
    assert passed_levels(path, manifest) == ["checksum", "toc", "restore"]
    # The scratch database is gone.
    with psycopg2.connect(scratch["database_url"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'rkr_verify_%'")
        assert cur.fetchone()[0] == 0
    conn.close()

    # Private storage, and no secret anywhere in it.
    for root, _dirs, files in os.walk(os.path.dirname(path)):
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
        for name in files:
            file = os.path.join(root, name)
            assert stat.S_IMODE(os.stat(file).st_mode) == 0o600, file
            with open(file, "rb") as handle:
                assert password_of(source).encode() not in handle.read()


def test_row_counts_come_from_the_dumps_snapshot(source, scratch, tmp_path):
    """Rows inserted while pg_dump runs are neither dumped nor counted: the restore
    reproduces the manifest's counts exactly."""
    stop = threading.Event()
    conn = psycopg2.connect(source)
    conn.autocommit = True

    def write():
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS churn (id serial PRIMARY KEY, t text)")
            while not stop.is_set():
                cur.execute("INSERT INTO churn (t) SELECT 'x' FROM generate_series(1, 50)")

    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(0.3)
        done = take_backup(params(source), backup_dir=str(tmp_path), label="env", backup_id="churn")
    finally:
        stop.set()
        writer.join()
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM churn")
            live = cur.fetchone()[0]
            cur.execute("DROP TABLE churn")
        conn.close()
    counted = {t["name"]: t["rows"] for t in done["manifest"]["tables"]}["public.churn"]
    assert 0 < counted < live
    verify_backup(done["path"], "restore", scratch=scratch)


def test_a_failing_pg_dump_leaves_nothing_behind(request, pg_cluster, tmp_path):
    url = new_source(request, pg_cluster)
    name = psycopg2.extensions.parse_dsn(url)["dbname"]
    with psycopg2.connect(pg_cluster.admin_url(name)) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE not_ours (id int)")  # owned by the superuser, no grant to the app role
    conn.close()
    with pytest.raises(BackupError, match=r"counting rows in the dump's snapshot failed: permission denied "
                                          r"for table not_ours \(then pg_dump: error: "):
        take_backup(params(url), backup_dir=str(tmp_path), label="env", backup_id="x")
    assert os.listdir(tmp_path / "env") == []


# -- the mutilation matrix ---------------------------------------------------------

def _append(path):
    with open(os.path.join(path, "dump.pgc"), "ab") as handle:
        handle.write(b"\0")


def _truncate(path):
    file = os.path.join(path, "dump.pgc")
    os.truncate(file, os.path.getsize(file) // 2)


def _flip(path, rel="dump.pgc"):
    file = os.path.join(path, rel)
    with open(file, "r+b") as handle:
        handle.seek(os.path.getsize(file) // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x01]))


def _extra(path):
    with open(os.path.join(path, "notes.txt"), "w") as handle:
        handle.write("not part of the backup\n")


def _edit_manifest(path):
    file = os.path.join(path, MANIFEST)
    with open(file) as handle:
        manifest = json.load(handle)
    manifest["tables"][0]["rows"] += 1
    with open(file, "w") as handle:
        json.dump(manifest, handle)


def _break_manifest_json(path):
    file = os.path.join(path, MANIFEST)
    with open(file, "rb") as handle:
        raw = handle.read()
    with open(file, "wb") as handle:
        handle.write(raw[: len(raw) // 2])


def _missing_file(path):
    data = sorted(n for n in os.listdir(os.path.join(path, "dump")) if n.endswith(".dat.gz"))
    os.unlink(os.path.join(path, "dump", data[0]))


def _extra_file_in_directory(path):
    with open(os.path.join(path, "dump", "9999.dat.gz"), "wb") as handle:
        handle.write(b"\x1f\x8b")


def _flip_in_directory(path):
    _flip(path, "dump/toc.dat")


MATRIX = [
    ("custom", _append, r"dump.pgc: size mismatch: \d+ bytes on disk, \d+ in the manifest \(\+1 bytes\)"),
    ("custom", _truncate, r"dump.pgc: size mismatch: \d+ bytes on disk, \d+ in the manifest \(-\d+ bytes\)"),
    ("custom", _flip, r"dump.pgc: checksum mismatch: SHA-256 differs from the manifest at the same size"),
    ("custom", _extra, r"notes.txt: extra file not in the manifest"),
    ("custom", _edit_manifest, r"manifest checksum mismatch: the manifest was changed after it was written"),
    ("custom", _break_manifest_json, r"manifest corrupt: not valid JSON"),
    ("directory", _missing_file, r"dump/\d+\.dat\.gz: missing \(listed in the manifest\)"),
    ("directory", _extra_file_in_directory, r"dump/9999.dat.gz: extra file not in the manifest"),
    ("directory", _flip_in_directory, r"dump/toc.dat: checksum mismatch"),
]


@pytest.mark.parametrize("kind, mutilate, message", MATRIX, ids=[m[1].__name__.strip("_") for m in MATRIX])
@pytest.mark.parametrize("level", ["checksum", "restore"])
def test_mutilated_backup_fails_with_a_specific_message(kind, mutilate, message, level, copy_of, scratch):
    path = copy_of(kind)
    verify_backup(path, "checksum", record=False)  # pristine copy verifies
    mutilate(path)
    with pytest.raises(BackupError, match=message):
        verify_backup(path, level, scratch=scratch)
    with psycopg2.connect(scratch["database_url"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'rkr_verify_%'")
        assert cur.fetchone()[0] == 0, "nothing restored from a backup failing its checksums"
    conn.close()


def test_manifest_of_another_database_is_refused(copy_of, backups, request, pg_cluster, tmp_path):
    other = new_source(request, pg_cluster)
    theirs = take_backup(params(other), backup_dir=str(tmp_path), label="other", backup_id="x")
    path = copy_of("custom")
    shutil.copy(os.path.join(theirs["path"], MANIFEST), os.path.join(path, MANIFEST))
    mine = load_manifest(backups["custom"])["database"]
    with pytest.raises(BackupError, match=f"manifest is for database {theirs['manifest']['database']['name']} "
                                          f"on 127.0.0.1:\\d+, not {mine['name']} on 127.0.0.1"):
        verify_backup(path, "checksum", identity=mine)
    # Without the database to compare, the files still give it away.
    with pytest.raises(BackupError, match=r"dump.pgc: (size|checksum) mismatch"):
        verify_backup(path, "checksum")


def _reseal(path, **changes):
    manifest = load_manifest(path)
    write_manifest(path, {k: v for k, v in manifest.items() if k != "manifest_checksum"} | changes)


def test_toc_and_restore_levels_check_what_checksums_cannot(copy_of, scratch):
    """A manifest that is intact but wrong (re-sealed): only the stronger levels notice."""
    path = copy_of("custom")
    manifest = load_manifest(path)
    _reseal(path, toc_entries=manifest["toc_entries"] + 1)
    verify_backup(path, "checksum", record=False)
    with pytest.raises(BackupError, match=r"TOC has \d+ entries, the manifest says \d+"):
        verify_backup(path, "toc")

    path = copy_of("custom")
    tables = [dict(t) for t in manifest["tables"]]
    tables[0]["rows"] += 1
    _reseal(path, tables=tables)
    verify_backup(path, "toc", record=False)
    with pytest.raises(BackupError, match=f"row count mismatch for {tables[0]['name']}: "
                                          f"{tables[0]['rows'] - 1} restored, {tables[0]['rows']} in the"):
        verify_backup(path, "restore", scratch=scratch)

    path = copy_of("custom")
    objects = dict(manifest["objects"]) | {"index": manifest["objects"]["index"] + 1}
    _reseal(path, objects=objects, schema_fingerprint="0" * 64)
    with pytest.raises(BackupError, match=r"object counts differ: index .*; schema fingerprint differs"):
        verify_backup(path, "restore", scratch=scratch)
    assert not read_verifications(path)[-1]["ok"]


def test_versions_older_than_the_dump_are_refused(copy_of, scratch):
    path = copy_of("custom")
    _reseal(path, pg_dump_major=99, pg_dump_version="99.0")
    with pytest.raises(BackupError, match=r"pg_restore \d+\.\d+ is older than the pg_dump 99.0 that wrote"):
        verify_backup(path, "restore", scratch=scratch)
    path = copy_of("custom")
    _reseal(path, server_major=99, server_version="99.0")
    with pytest.raises(BackupError, match=r"the scratch server runs PostgreSQL \d+.*older than the backed-up"):
        verify_backup(path, "restore", scratch=scratch)


def test_same_id_is_idempotent_force_replaces_and_retention_keeps_protected(source, tmp_path):
    store = str(tmp_path)
    first = take_backup(params(source), backup_dir=store, label="env", backup_id="a")
    again = take_backup(params(source), backup_dir=store, label="env", backup_id="a")
    assert first["changed"] and not again["changed"]
    assert again["manifest"]["manifest_checksum"] == first["manifest"]["manifest_checksum"]
    forced = take_backup(params(source), backup_dir=store, label="env", backup_id="a", force=True)
    assert forced["changed"]
    assert forced["manifest"]["manifest_checksum"] != first["manifest"]["manifest_checksum"]
    assert sorted(os.listdir(os.path.join(store, "env"))) == ["a"]

    for backup_id in ("b", "c", "d"):
        time.sleep(1.05)  # manifests order by their end time (seconds)
        done = take_backup(params(source), backup_dir=store, label="env", backup_id=backup_id)
        verify_backup(done["path"], "checksum")  # only verified backups count toward keep
    os.makedirs(os.path.join(store, "env", "not-a-backup"), mode=0o700)
    identity = load_manifest(os.path.join(store, "env", "a"))["database"]
    result = prune(store, "env", identity, keep=2, protect=[os.path.join(store, "env", "a")])
    assert sorted(os.path.basename(p) for p in result["deleted"]) == ["b"]
    assert sorted(os.listdir(os.path.join(store, "env"))) == ["a", "c", "d", "not-a-backup"]


def test_restore_compares_row_counts_before_commit_and_rolls_back_naming_the_tables(request, pg_cluster,
                                                                                  tmp_path):
    """A manifest whose counts the archive cannot reproduce (re-sealed, so its
    checksums pass): the restore is rolled back, not committed, and every
    differing table is named."""
    url = new_source(request, pg_cluster)
    done = take_backup(params(url), backup_dir=str(tmp_path), label="env", backup_id="x")
    tables = [dict(t) for t in done["manifest"]["tables"]]
    wrong = [t for t in tables if t["rows"] > 0][:2]
    for table in wrong:
        table["rows"] += 7
    _reseal(done["path"], tables=tables)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE marker (id int)")
        cur.execute(f"DELETE FROM {wrong[0]['name']} WHERE ctid IN (SELECT ctid FROM {wrong[0]['name']} LIMIT 1)")
    conn.close()
    before = table_hashes(url)
    with pytest.raises(BackupError) as failure:
        restore_backup(params(url), done["path"])
    message = str(failure.value)
    assert message.startswith("restore rolled back, nothing committed (the database is as it was): "
                              f"rkr: row counts differ from the manifest in {len(wrong)} table(s): ")
    for table in wrong:
        assert f"{table['name']}: {table['rows'] - 7} restored, {table['rows']} in the manifest" in message
    assert table_hashes(url) == before  # the deleted row is still missing: nothing was committed

    # The same archive with its true manifest restores, checked before the COMMIT.
    _reseal(done["path"], tables=done["manifest"]["tables"])
    restored = restore_backup(params(url), done["path"])
    assert restored["restored"] and restored["counts_checked_before_commit"]
    assert restored["extra_tables"] == ["public.marker"]
    assert restored["rows_checked"] == done["manifest"]["rows"]


def test_no_child_process_gets_a_password_on_its_argv(request, pg_cluster, scratch, tmp_path, monkeypatch):
    """Every program the backup code starts (pg_dump, pg_restore, psql) is recorded
    with its argv and what the kernel shows for it (/proc/<pid>/cmdline, while it
    still runs); no password is ever there, while the environment does carry it."""
    url = new_source(request, pg_cluster)
    secrets_ = {password_of(url), password_of(scratch["database_url"])}
    started = []
    real_popen = subprocess.Popen

    class Recording(real_popen):
        def __init__(self, args, *rest, **kwargs):
            super().__init__(args, *rest, **kwargs)
            try:
                with open(f"/proc/{self.pid}/cmdline", "rb") as handle:
                    shown = handle.read().split(b"\0")
            except OSError:
                shown = []
            started.append({"argv": [str(a) for a in args], "proc": [a.decode("utf-8", "replace") for a in shown],
                            "env_has_password": bool(set((kwargs.get("env") or {}).values()) & secrets_)})

    monkeypatch.setattr(subprocess, "Popen", Recording)
    done = take_backup(params(url), backup_dir=str(tmp_path), label="env", backup_id="argv")
    verify_backup(done["path"], "restore", scratch=scratch, reuse=False)
    restore_backup(params(url), done["path"])
    monkeypatch.undo()

    programs = {os.path.basename(s["argv"][0]) for s in started}
    assert {"pg_dump", "pg_restore", "psql"} <= programs
    assert any(s["env_has_password"] for s in started if s["argv"][0].endswith(("pg_dump", "psql")))
    # A small dump may be over before its cmdline is read; psql waits for its input, so it is there.
    assert any(s["proc"] and s["proc"][0].endswith("psql") for s in started), "no cmdline was read"
    for entry in started:
        for word in entry["argv"] + entry["proc"]:
            assert not any(secret in word for secret in secrets_), entry["argv"][0]
        assert not any("password" in word.lower() and "=" in word for word in entry["argv"]), entry["argv"]


HOLD_PARTIAL = """
import fcntl, os, sys, time
path = sys.argv[1]
os.mkdir(path, 0o700)
fd = os.open(path, os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
with open(os.path.join(path, "dump.pgc"), "wb") as handle:
    handle.write(b"PGDMP half a dump")
os.utime(path, (time.time() - 3600, time.time() - 3600))
print("ready", flush=True)
time.sleep(600)
"""


def test_a_killed_runs_partial_is_removed_and_a_live_ones_is_not(source, tmp_path):
    """Two processes write partial dumps the way take_backup does (flock held);
    one is killed. The next backup removes the dead one's, never the live one's."""
    base = tmp_path / "env"
    base.mkdir(mode=0o700)
    identity = identity_of(resolve_connection(params(source)))
    writers = {}
    for name in ("killed", "live"):
        path = str(base / partial_name("run", identity, name))
        proc = subprocess.Popen([sys.executable, "-c", HOLD_PARTIAL, path], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        writers[name] = (proc, path)
    try:
        writers["killed"][0].send_signal(signal.SIGKILL)
        writers["killed"][0].wait()
        done = take_backup(params(source), backup_dir=str(tmp_path), label="env", backup_id="next")
        assert done["removed_partials"] == [writers["killed"][1]]
        assert not os.path.exists(writers["killed"][1])
        assert os.path.isdir(writers["live"][1])
    finally:
        for proc, _path in writers.values():
            proc.kill()
            proc.wait()
    # The live writer gone too, the following run cleans up after it; its own dump stays.
    again = take_backup(params(source), backup_dir=str(tmp_path), label="env", backup_id="next")
    assert again["removed_partials"] == [writers["live"][1]] and again["changed"]
    assert sorted(os.listdir(base)) == ["next"]


# -- through ansible-playbook ---------------------------------------------------------

GATED_PLAY = """\
- name: A stand-in for the conversion, gated like it
  hosts: app_environments
  gather_facts: false
  tasks:
    - name: Take and verify a backup first
      ansible.builtin.include_role:
        name: backup
      vars:
        backup_database_url: "{{{{ recovery_database_url }}}}"
      when: take_backup | default(false) | bool
    - name: Require a verified backup
      ansible.builtin.include_role:
        name: backup
        tasks_from: gate
      vars:
        backup_database_url: "{{{{ recovery_database_url }}}}"
        backup_environment: staging
    - name: Convert
      ansible.builtin.debug:
        msg: CONVERSION RAN with {{{{ backup_gate_path }}}}
"""


@pytest.fixture
def gated(tmp_path):
    path = tmp_path / "gated.yml"
    path.write_text(GATED_PLAY.format())
    return str(path)


@pytest.fixture
def pb(tmp_path, scratch):
    def run(playbook, url, **kwargs):
        extra = {"recovery_database_url": url, "backup_dir": str(tmp_path / "backups"),
                 "backup_scratch_url": scratch["database_url"], **kwargs.pop("extra", {})}
        return run_playbook(playbook, extra, **kwargs)
    run.store = tmp_path / "backups"
    return run


def test_gate_blocks_without_a_backup_and_passes_with_one(request, pg_cluster, pb, gated):
    url = new_source(request, pg_cluster)
    blocked = pb(gated, url)
    assert blocked.rc != 0
    assert "CONVERSION RAN" not in blocked.output
    assert "no verified backup of" in blocked.output
    # The command to paste names the inventory this run was given, not a guessed one.
    inventory = blocked.argv[blocked.argv.index("-i") + 1]
    assert f"Make one, verified at level restore: ansible-playbook playbooks/backup.yml -i {inventory}" \
        in blocked.output

    same_run = pb(gated, url, extra={"take_backup": True, "backup_run_id": "gate1"})
    assert same_run.rc == 0, same_run.output[-3000:]
    assert "verified in this run" in same_run.output and "CONVERSION RAN" in same_run.output

    later = pb(gated, url)  # a recent backup of the same schema
    assert later.rc == 0, later.output[-3000:]
    assert "of the same schema" in later.output and "CONVERSION RAN" in later.output

    too_old = pb(gated, url, extra={"backup_gate_max_age_hours": 0})
    assert too_old.rc != 0 and "h allowed" in too_old.output and "CONVERSION RAN" not in too_old.output

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE added_after_the_backup (id int)")
    conn.close()
    changed = pb(gated, url)
    assert changed.rc != 0
    assert "the schema changed since this backup (fingerprint differs)" in changed.output
    assert "CONVERSION RAN" not in changed.output

    # A backup damaged since its verification does not let the change through.
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE added_after_the_backup")
    conn.close()
    _append(str(pb.store / "test-env" / "gate1"))
    damaged = pb(gated, url)
    assert damaged.rc != 0 and "size mismatch" in damaged.output and "CONVERSION RAN" not in damaged.output


def test_backup_playbook_is_idempotent_checkable_and_never_prints_a_password(request, pg_cluster, pb):
    url = new_source(request, pg_cluster)
    checked = pb("playbooks/backup.yml", url, check=True, extra={"backup_run_id": "r1"})
    assert checked.rc == 0, checked.output[-3000:]
    assert "would dump" in checked.output and "of table data (before compression)" in checked.output
    assert not pb.store.exists() or not list(pb.store.rglob(MANIFEST))

    # No scratch URL: the role starts a throwaway cluster, whose superuser URL stays hidden too.
    first = pb("playbooks/backup.yml", url, verbosity=3, extra={"backup_run_id": "r1", "backup_scratch_url": ""})
    assert first.rc == 0, first.output[-3000:]
    assert first.recap()["changed"] == 1
    assert "backup verified at level restore: checked checksum, toc, restore" in first.output
    assert password_of(url) not in first.output
    assert "postgresql://postgres:" not in first.output and "PGPASSWORD" not in first.output
    for file in pb.store.rglob("*"):
        if file.is_file():
            assert password_of(url).encode() not in file.read_bytes(), file

    again = pb("playbooks/backup.yml", url, extra={"backup_run_id": "r1"})
    assert again.rc == 0 and again.recap()["changed"] == 0
    assert "this run already has custom backup" in again.output
    assert "reused the recorded restore" in again.output
    check_again = pb("playbooks/backup.yml", url, check=True, extra={"backup_run_id": "r1"})
    assert check_again.rc == 0 and check_again.recap()["changed"] == 0


@pytest.mark.parametrize("extra, message", [
    ({"backup_jobs": 4}, "backup_jobs > 1 needs backup_format directory"),
    ({"backup_format": "tar"}, "backup_format"),
    ({"backup_run_id": "../escape"}, "backup_run_id must be letters"),
    ({"recovery_database_url": "postgresql://CHANGE_ME_user:CHANGE_ME_pw@h/db"}, "CHANGE_ME"),
    ({"recovery_database_url": "mysql://u:hunter22@h/db"}, "is not a postgresql:// URL"),
])
def test_bad_input_is_rejected_before_anything_runs(source, pb, extra, message):
    result = pb("playbooks/backup.yml", extra.pop("recovery_database_url", source), extra=extra)
    assert result.rc != 0
    assert message in result.output, result.output[-3000:]
    assert "hunter22" not in result.output
    assert not pb.store.exists()


def test_failures_name_the_problem_without_the_password(request, pg_cluster, pb):
    url = new_source(request, pg_cluster)
    wrong = url.replace(password_of(url), "not-the-password")
    result = pb("playbooks/backup.yml", wrong)
    assert result.rc != 0
    assert "password rejected for app_owner@127.0.0.1" in result.output
    assert "not-the-password" not in result.output


def test_backup_force_through_the_playbook_dumps_again_under_the_same_run_id(request, pg_cluster, pb):
    url = new_source(request, pg_cluster)
    first = pb("playbooks/backup.yml", url, extra={"backup_run_id": "f1", "backup_verify_level": "checksum"})
    assert first.rc == 0, first.output[-3000:]
    path = pb.store / "test-env" / "f1"
    old = load_manifest(str(path))
    forced = pb("playbooks/backup.yml", url, extra={"backup_run_id": "f1", "backup_force": True})
    assert forced.rc == 0, forced.output[-3000:]
    assert forced.recap()["changed"] >= 1
    assert f"dumped custom backup {path}" in forced.output
    new = load_manifest(str(path))
    assert new["manifest_checksum"] != old["manifest_checksum"] and new["started_at"] >= old["started_at"]
    assert sorted(os.listdir(pb.store / "test-env")) == ["f1"]  # replaced, no leftover
    # The new manifest was verified afresh (the old one's records do not carry over).
    assert passed_levels(str(path), new) == ["restore"]
    assert "backup verified at level restore: checked checksum, toc, restore" in forced.output


def test_an_existing_group_readable_backup_dir_is_refused_and_left_alone(source, pb, tmp_path):
    shared = tmp_path / "shared-backups"
    shared.mkdir()
    os.chmod(shared, 0o750)  # noqa: S103 - a directory someone shares on purpose is the case under test
    result = pb("playbooks/backup.yml", source, extra={"backup_dir": str(shared)})
    assert result.rc != 0
    assert f"{shared} exists with mode 0750: group or others may read it" in result.output
    assert f"chmod 700 {shared}" in result.output
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o750 and os.listdir(shared) == []


EXPORT_PLAY = """\
- name: The backup role with Render's export on, then the gate, as recover.yml runs them
  hosts: app_environments
  gather_facts: false
  tasks:
    - name: Take and verify a backup, and ask Render for its export
      ansible.builtin.include_role:
        name: backup
      vars:
        backup_database_url: "{{ recovery_database_url }}"
    - name: Require a verified backup
      ansible.builtin.include_role:
        name: backup
        tasks_from: gate
      vars:
        backup_database_url: "{{ recovery_database_url }}"
    - name: Show what the run report reads
      ansible.builtin.debug:
        msg: "EXPORT ERROR FACT=[{{ backup_render_export_error }}] RETENTION RAN={{ __backup_prune is defined }}"
"""


def test_a_failing_render_export_is_a_warning_never_a_failed_backup(request, pg_cluster, pb, tmp_path):
    from localenv.render_sim import testing

    url = new_source(request, pg_cluster)
    play = tmp_path / "export.yml"
    play.write_text(EXPORT_PLAY)
    with testing.running(pg_cluster) as (server, names, key):
        testing.Control(server, key).faults("POST /postgres/{postgresId}/export",
                                            [{"status": 403}] * 5)
        result = pb(str(play), url, verbosity=3, extra={
            "backup_run_id": "e1", "backup_render_export": True,
            "backup_render_postgres_id": names["postgres"], "backup_render_api_key": key,
            "backup_render_api_base_url": server.base_url})
    assert result.rc == 0, result.output[-4000:]
    assert "WARNING: Render's own export of " + names["postgres"] + " failed (" in result.output
    assert "is unaffected and remains the one the conversion depends on" in result.output
    fact = result.output.split("EXPORT ERROR FACT=[", 1)[1].split("]", 1)[0]
    assert fact and "403" in fact, fact
    assert "RETENTION RAN=True" in result.output and "backup gate passed" in result.output
    assert key not in result.output


# -- restore.yml ---------------------------------------------------------------------

def test_restore_round_trips_and_production_needs_confirmation(request, pg_cluster, pb):
    url = new_source(request, pg_cluster)
    before = table_hashes(url)
    taken = pb("playbooks/backup.yml", url, extra={"backup_run_id": "before", "backup_verify_level": "checksum"})
    assert taken.rc == 0, taken.output[-3000:]

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        # Lose rows in the two largest tables no foreign key references.
        cur.execute("SELECT c.oid::regclass::text FROM pg_class c WHERE c.relkind = 'r' "
                    "AND c.relnamespace = 'public'::regnamespace AND pg_relation_size(c.oid) > 0 "
                    "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.confrelid = c.oid) "
                    "ORDER BY pg_relation_size(c.oid) DESC, 1 LIMIT 2")
        for (table,) in cur.fetchall():
            cur.execute(f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} LIMIT 3)")
        cur.execute("CREATE TABLE created_after (id int)")
    conn.close()
    mutated = table_hashes(url)
    mutated.pop("public.created_after")
    assert mutated != before

    production = {"recovery_environment": "production"}
    refused = pb("playbooks/restore.yml", url, extra=production)
    assert refused.rc != 0
    assert "refusing to restore into production" in refused.output
    assert "-e restore_confirm=production" in refused.output
    wrong = pb("playbooks/restore.yml", url, extra=production | {"restore_confirm": "staging"})
    assert wrong.rc != 0 and "refusing to restore into production" in wrong.output

    checked = pb("playbooks/restore.yml", url, check=True, extra=production | {"restore_confirm": "production"})
    assert checked.rc == 0 and "would restore" in checked.output

    # restore_path relative to where ansible-playbook runs (the project root here).
    relative = os.path.relpath(pb.store / "test-env" / "before", ROOT)
    restored = pb("playbooks/restore.yml", url,
                  extra=production | {"restore_confirm": "production", "restore_path": relative})
    assert restored.rc == 0, restored.output[-3000:]
    assert "row counts equal the manifest" in restored.output
    assert "tables created after the backup, left alone: public.created_after" in restored.output
    after = table_hashes(url)
    after.pop("public.created_after")
    assert after == before
    assert password_of(url) not in restored.output


def test_restore_without_a_path_takes_the_newest_verified_backup_never_a_failed_one(request, pg_cluster, pb):
    url = new_source(request, pg_cluster)
    none_yet = pb("playbooks/restore.yml", url)
    assert none_yet.rc != 0 and "no backup of" in none_yet.output

    good = pb("playbooks/backup.yml", url, extra={"backup_run_id": "good", "backup_verify_level": "checksum"})
    assert good.rc == 0, good.output[-3000:]
    before = table_hashes(url)
    time.sleep(1.05)  # manifests order by their end time (seconds)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE only_in_the_failed_backup (id int)")
    conn.close()
    # A newer run whose verification failed (no scratch server for level restore).
    failed = take_backup(params(url), backup_dir=str(pb.store), label="test-env", backup_id="failed")
    with pytest.raises(BackupError, match="needs a scratch server"):
        verify_backup(failed["path"], "restore")
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE only_in_the_failed_backup")
        cur.execute("CREATE TABLE after_both (id int)")
    conn.close()

    restored = pb("playbooks/restore.yml", url)
    assert restored.rc == 0, restored.output[-3000:]
    assert f"restored {pb.store / 'test-env' / 'good'}" in restored.output
    assert "chosen as the newest backup verified at level checksum, passing over newer: failed" in restored.output
    after = table_hashes(url)
    assert "public.only_in_the_failed_backup" not in after
    after.pop("public.after_both")
    assert after == before

    # With only unverified backups there is nothing to restore by default.
    shutil.rmtree(pb.store / "test-env" / "good")
    refused = pb("playbooks/restore.yml", url)
    assert refused.rc != 0
    assert "refusing to restore: no backup of" in refused.output
    assert "passed verification (failed: its verification failed)" in refused.output
    assert "-e restore_path=<dir>" in refused.output


def test_restore_refuses_a_damaged_backup_and_leaves_the_database_alone(request, pg_cluster, pb):
    url = new_source(request, pg_cluster)
    taken = pb("playbooks/backup.yml", url, extra={"backup_run_id": "b", "backup_verify_level": "checksum"})
    assert taken.rc == 0, taken.output[-3000:]
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE marker (id int)")
    conn.close()
    before = table_hashes(url)
    _flip(str(pb.store / "test-env" / "b"))
    result = pb("playbooks/restore.yml", url, extra={"restore_path": str(pb.store / "test-env" / "b")})
    assert result.rc != 0
    assert "dump.pgc: checksum mismatch" in result.output
    assert table_hashes(url) == before
