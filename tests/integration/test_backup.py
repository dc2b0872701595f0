"""Verified backups end to end on a real server: idempotence, force and
retention, the restore's pre-COMMIT row-count check, no password on any child's
argv, and a killed run's partial dump."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg2
import pytest
from ansible.module_utils.pg_backup_dump import take_backup
from ansible.module_utils.pg_backup_manifest import (
    identity_of,
    load_manifest,
)
from ansible.module_utils.pg_backup_policy import prune
from ansible.module_utils.pg_backup_restore import restore_backup
from ansible.module_utils.pg_backup_store import BackupError, partial_name
from ansible.module_utils.pg_backup_verification import verify_backup
from ansible.module_utils.pg_connection import resolve_connection

from tests.integration.backup_support import (
    new_source,
    params,
    password_of,
    reseal,
    table_hashes,
)


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
    reseal(done["path"], tables=tables)
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
    reseal(done["path"], tables=done["manifest"]["tables"])
    restored = restore_backup(params(url), done["path"])
    assert restored["restored"] and restored["counts_checked_before_commit"]
    assert restored["extra_tables"] == ["public.marker"]
    assert restored["rows_checked"] == done["manifest"]["rows"]


def _cmdline(pid: int) -> list[bytes]:
    """What the kernel shows as the process's argv. Popen returns once exec has begun, but
    the kernel sets the new argv a moment later (cmdline reads empty meanwhile; seen on a
    loaded machine): read again until it shows, or the process is gone."""
    deadline = time.monotonic() + 2
    while True:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                shown = handle.read()
        except OSError:
            return []
        if shown or time.monotonic() > deadline:
            return shown.split(b"\0")
        time.sleep(0.002)


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
            shown = _cmdline(self.pid)
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
