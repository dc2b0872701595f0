"""Verified backups on a real server: the dump, every verification level, and
the mutilation matrix (after pg_verifybackup's 003_corruption.pl)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import time
import uuid

import psycopg2
import pytest
from ansible.module_utils.pg_backup_dump import take_backup
from ansible.module_utils.pg_backup_manifest import (
    load_manifest,
    passed_levels,
    read_verifications,
)
from ansible.module_utils.pg_backup_store import MANIFEST, VERIFICATIONS, BackupError
from ansible.module_utils.pg_backup_verification import verify_backup
from ansible.module_utils.pg_connection import resolve_connection

from tests.integration.backup_support import (
    append_a_byte,
    flip_a_byte,
    new_source,
    params,
    password_of,
    reseal,
    table_hashes,
)


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

def _truncate(path):
    file = os.path.join(path, "dump.pgc")
    os.truncate(file, os.path.getsize(file) // 2)


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
    flip_a_byte(path, "dump/toc.dat")


MATRIX = [
    ("custom", append_a_byte, r"dump.pgc: size mismatch: \d+ bytes on disk, \d+ in the manifest \(\+1 bytes\)"),
    ("custom", _truncate, r"dump.pgc: size mismatch: \d+ bytes on disk, \d+ in the manifest \(-\d+ bytes\)"),
    ("custom", flip_a_byte, r"dump.pgc: checksum mismatch: SHA-256 differs from the manifest at the same size"),
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


def test_toc_and_restore_levels_check_what_checksums_cannot(copy_of, scratch):
    """A manifest that is intact but wrong (re-sealed): only the stronger levels notice."""
    path = copy_of("custom")
    manifest = load_manifest(path)
    reseal(path, toc_entries=manifest["toc_entries"] + 1)
    verify_backup(path, "checksum", record=False)
    with pytest.raises(BackupError, match=r"TOC has \d+ entries, the manifest says \d+"):
        verify_backup(path, "toc")

    path = copy_of("custom")
    tables = [dict(t) for t in manifest["tables"]]
    tables[0]["rows"] += 1
    reseal(path, tables=tables)
    verify_backup(path, "toc", record=False)
    with pytest.raises(BackupError, match=f"row count mismatch for {tables[0]['name']}: "
                                          f"{tables[0]['rows'] - 1} restored, {tables[0]['rows']} in the"):
        verify_backup(path, "restore", scratch=scratch)

    path = copy_of("custom")
    objects = dict(manifest["objects"]) | {"index": manifest["objects"]["index"] + 1}
    reseal(path, objects=objects, schema_fingerprint="0" * 64)
    with pytest.raises(BackupError, match=r"object counts differ: index .*; schema fingerprint differs"):
        verify_backup(path, "restore", scratch=scratch)
    assert not read_verifications(path)[-1]["ok"]


def test_versions_older_than_the_dump_are_refused(copy_of, scratch):
    path = copy_of("custom")
    reseal(path, pg_dump_major=99, pg_dump_version="99.0")
    with pytest.raises(BackupError, match=r"pg_restore \d+\.\d+ is older than the pg_dump 99.0 that wrote"):
        verify_backup(path, "restore", scratch=scratch)
    path = copy_of("custom")
    reseal(path, server_major=99, server_version="99.0")
    with pytest.raises(BackupError, match=r"the scratch server runs PostgreSQL \d+.*older than the backed-up"):
        verify_backup(path, "restore", scratch=scratch)
