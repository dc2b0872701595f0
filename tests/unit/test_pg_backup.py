"""Manifest, checksums, retention, the gate's rules and the client environment, without a server."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import stat
import time

import pytest
from ansible.module_utils.pg_backup_manifest import (
    file_problems,
    load_manifest,
    record_verification,
    verify_checksums,
    write_manifest,
)
from ansible.module_utils.pg_backup_policy import (
    evaluate_gate,
    gate_message,
    list_backups,
    plan_retention,
    restore_candidate,
)
from ansible.module_utils.pg_backup_restore import row_count_check_sql
from ansible.module_utils.pg_backup_store import (
    MANIFEST,
    BackupError,
    HashingWriter,
    check_backup_id,
    iso,
    partial_name,
    private_dir,
    stale_partials,
)
from ansible.module_utils.pg_catalog_fingerprint import fingerprint, object_counts, schema_difference
from ansible.module_utils.pg_client_programs import count_toc_lines, first_error, libpq_env, parse_version

IDENTITY = {"host": "db.example", "port": 5432, "name": "app"}
NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
OBJECTS = [["table", "public.users", ""], ["column", "public.users.id", "uuid NOT NULL"]]


def make_backup(root, backup_id="b1", *, finished=NOW, identity=IDENTITY, content=b"PGDMP data",
                objects=OBJECTS, level="restore", failed=False):
    path = private_dir(os.path.join(str(root), "env", backup_id))
    with open(os.path.join(path, "dump.pgc"), "wb") as handle:
        handle.write(content)
    manifest = write_manifest(path, {
        "manifest_version": 1, "backup_id": backup_id, "database": identity, "format": "custom",
        "finished_at": iso(finished), "pg_dump_version": "15.2", "pg_dump_major": 15,
        "files": [{"path": "dump.pgc", "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}],
        "tables": [], "schema_fingerprint": fingerprint(objects), "objects": object_counts(objects),
    })
    if level:
        record_verification(path, manifest, level, True, "run", "ok")
    if failed:
        record_verification(path, manifest, "restore", False, "run", "restore into a scratch database failed")
    return path


def test_manifest_round_trip_and_every_file_problem(tmp_path):
    path = make_backup(tmp_path)
    assert verify_checksums(path, IDENTITY)["backup_id"] == "b1"
    assert file_problems(path, load_manifest(path)) == []
    with open(os.path.join(path, "dump.pgc"), "ab") as handle:
        handle.write(b"!")
    with open(os.path.join(path, "stray"), "w") as handle:
        handle.write("x")
    problems = file_problems(path, load_manifest(path))
    assert problems == ["stray: extra file not in the manifest",
                        "dump.pgc: size mismatch: 11 bytes on disk, 10 in the manifest (+1 bytes)"]
    os.unlink(os.path.join(path, "dump.pgc"))
    with pytest.raises(BackupError, match=r"2 problem\(s\): dump.pgc: missing .*; stray: extra file"):
        verify_checksums(path)


def test_same_size_change_is_a_checksum_mismatch(tmp_path):
    path = make_backup(tmp_path)
    with open(os.path.join(path, "dump.pgc"), "r+b") as handle:
        handle.write(b"X")
    assert file_problems(path, load_manifest(path)) == [
        "dump.pgc: checksum mismatch: SHA-256 differs from the manifest at the same size"]


@pytest.mark.parametrize("damage, message", [
    (lambda m: m.replace('"format": "custom"', '"format": "directory"'), "manifest checksum mismatch"),
    (lambda m: m[:-20], "manifest corrupt: not valid JSON"),
    (lambda m: "[]", "manifest corrupt: not a JSON object"),
    (lambda m: json.dumps({k: v for k, v in json.loads(m).items() if k != "manifest_checksum"}),
     "it has no manifest_checksum"),
])
def test_a_damaged_manifest_is_named(tmp_path, damage, message):
    path = make_backup(tmp_path)
    file = os.path.join(path, MANIFEST)
    with open(file) as handle:
        text = handle.read()
    with open(file, "w") as handle:
        handle.write(damage(text))
    with pytest.raises(BackupError, match=message):
        load_manifest(path)


def test_manifest_of_another_database(tmp_path):
    path = make_backup(tmp_path, identity=IDENTITY | {"name": "other"})
    with pytest.raises(BackupError, match=r"manifest is for database other on db\.example:5432, not app on"):
        verify_checksums(path, IDENTITY)


def test_hashing_writer_hashes_what_it_writes(tmp_path):
    target = str(tmp_path / "out")
    writer = HashingWriter(target)
    for chunk in (b"a" * 100_000, b"b" * 3):
        writer.write(chunk)
    described = writer.close()
    with open(target, "rb") as handle:
        data = handle.read()
    assert described == {"size": 100_003, "sha256": hashlib.sha256(data).hexdigest()}
    assert os.stat(target).st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        HashingWriter(target)


def test_retention_keeps_newest_and_protected_and_ignores_others(tmp_path):
    paths = [make_backup(tmp_path, f"b{i}", finished=NOW + dt.timedelta(hours=i)) for i in range(5)]
    make_backup(tmp_path, "foreign", identity=IDENTITY | {"name": "other"})
    os.makedirs(tmp_path / "env" / "junk")
    backups = list_backups(str(tmp_path), "env")
    kept, deleted = plan_retention(backups, IDENTITY, 2, [paths[0]])
    assert [b["id"] for b in kept] == ["b4", "b3", "b0"]
    assert [b["id"] for b in deleted] == ["b2", "b1"]
    with pytest.raises(BackupError, match="at least one"):
        plan_retention(backups, IDENTITY, 0, [])


def test_failing_runs_never_push_a_verified_backup_out(tmp_path):
    """Four runs whose verification failed, newer than three good backups, with keep=2:
    the failed ones go, the two newest verified stay, and so does the newest
    restore-verified one even beyond keep."""
    at = [NOW + dt.timedelta(hours=i) for i in range(9)]
    make_backup(tmp_path, "restored", finished=at[0], level="restore")
    make_backup(tmp_path, "toc1", finished=at[1], level="toc")
    make_backup(tmp_path, "sum2", finished=at[2], level="checksum")
    make_backup(tmp_path, "sum3", finished=at[3], level="checksum")
    for i in range(4, 8):
        make_backup(tmp_path, f"failed{i}", finished=at[i], level=None, failed=True)
    make_backup(tmp_path, "in-flight", finished=at[8], level=None)
    kept, deleted = plan_retention(list_backups(str(tmp_path), "env"), IDENTITY, 2, [])
    assert [b["id"] for b in kept] == ["in-flight", "sum3", "sum2", "restored"]
    assert [b["id"] for b in deleted] == ["failed7", "failed6", "failed5", "failed4", "toc1"]
    why = {b["id"]: b["retention"] for b in kept + deleted}
    assert why["restored"] == "the newest restore-verified backup"
    assert why["failed7"] == "its verification failed"
    assert why["in-flight"] == "not verified yet, newer than the newest verified backup"


def test_retention_deletes_nothing_while_no_backup_passed_verification(tmp_path):
    make_backup(tmp_path, "old", finished=NOW, level=None)
    make_backup(tmp_path, "bad", finished=NOW + dt.timedelta(hours=1), level=None, failed=True)
    kept, deleted = plan_retention(list_backups(str(tmp_path), "env"), IDENTITY, 1, [])
    assert deleted == [] and len(kept) == 2
    # Once one passes, an older never-verified one is a dead run's and goes.
    make_backup(tmp_path, "good", finished=NOW + dt.timedelta(hours=2), level="checksum")
    kept, deleted = plan_retention(list_backups(str(tmp_path), "env"), IDENTITY, 1, [])
    assert [b["id"] for b in kept] == ["good"] and [b["id"] for b in deleted] == ["bad", "old"]


def test_restore_candidate_prefers_restore_verified_and_never_takes_an_unverified_one(tmp_path):
    make_backup(tmp_path, "restored", finished=NOW, level="restore")
    make_backup(tmp_path, "summed", finished=NOW + dt.timedelta(hours=1), level="checksum")
    make_backup(tmp_path, "failed", finished=NOW + dt.timedelta(hours=2), level=None, failed=True)
    chosen = restore_candidate(str(tmp_path), "env", IDENTITY)
    assert (chosen["id"], chosen["level"], chosen["skipped_newer"]) == ("restored", "restore", ["failed", "summed"])

    make_backup(tmp_path / "s", "summed", finished=NOW, level="checksum")
    make_backup(tmp_path / "s", "never", finished=NOW + dt.timedelta(hours=1), level=None)
    chosen = restore_candidate(str(tmp_path / "s"), "env", IDENTITY)
    assert (chosen["id"], chosen["level"]) == ("summed", "checksum")

    make_backup(tmp_path / "n", "failed", level=None, failed=True)
    make_backup(tmp_path / "n", "never", finished=NOW + dt.timedelta(hours=1), level=None)
    with pytest.raises(BackupError, match=r"refusing to restore: no backup of app on db\.example:5432 under "
                                          r".*/env passed verification \(never: never verified; failed: its "
                                          r"verification failed\)\. Take and verify one"):
        restore_candidate(str(tmp_path / "n"), "env", IDENTITY, "Take and verify one.")
    with pytest.raises(BackupError, match=r"no backup of app on db\.example:5432 under"):
        restore_candidate(str(tmp_path / "empty"), "env", IDENTITY)


def test_an_existing_directory_is_never_chmodded(tmp_path):
    created = private_dir(str(tmp_path / "new" / "deeper"))
    assert stat.S_IMODE(os.stat(created).st_mode) == 0o700
    assert private_dir(created) == created  # ours and private: accepted as it is

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)  # noqa: S103 - a directory shared on purpose is the case under test
    with pytest.raises(BackupError, match=rf"{re.escape(str(shared))} exists with mode 0755: group or others "
                                          rf"may read it.*chmod 700 {re.escape(str(shared))}"):
        private_dir(str(shared))
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o755

    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    if os.geteuid() != 0:
        pytest.skip("giving a directory to another user needs root")
    os.chown(foreign, os.geteuid() + 1, -1)
    with pytest.raises(BackupError, match=rf"{re.escape(str(foreign))} \(mode 0700\) is owned by uid "
                                          rf"{os.geteuid() + 1}, not by this user"):
        private_dir(str(foreign))

    (tmp_path / "file").write_text("x")
    with pytest.raises(BackupError, match="exists and is not a directory"):
        private_dir(str(tmp_path / "file"))


def test_stale_partials_go_and_live_or_young_or_other_databases_stay(tmp_path):
    import fcntl

    base = private_dir(str(tmp_path / "env"))
    old = time.time() - 3600

    def partial(backup_id, identity=IDENTITY, *, age=old):
        path = os.path.join(base, partial_name(backup_id, identity, backup_id))
        os.mkdir(path, 0o700)
        with open(os.path.join(path, "dump.pgc"), "wb") as handle:
            handle.write(b"PGDMP half")
        os.utime(path, (age, age))
        return path

    dead = partial("dead")
    live = partial("live")
    young = partial("young", age=time.time())
    theirs = partial("theirs", IDENTITY | {"name": "other"})
    holder = os.open(live, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # a run still writing it
    try:
        assert stale_partials(base, IDENTITY, remove=False) == [dead]
        assert os.path.isdir(dead)
        assert stale_partials(base, IDENTITY) == [dead]
    finally:
        os.close(holder)
    assert not os.path.exists(dead)
    assert all(os.path.isdir(p) for p in (live, young, theirs))
    # Its writer gone (the lock dropped with it), the partial is stale too.
    assert stale_partials(base, IDENTITY) == [live]


def test_row_count_check_names_every_table_and_quotes_safely():
    manifest = {"tables": [{"schema": "Billing", "table": "Invoices", "name": '"Billing"."Invoices"', "rows": 20},
                           {"schema": "public", "table": "users", "name": "public.users", "rows": 200}]}
    text = row_count_check_sql(manifest, "abc123")
    assert text.count("$rkr_abc123$") == 2 and text.count("$rkr_abc123_rows$") == 2
    inner = text.split("$rkr_abc123_rows$")[1]
    assert json.loads(inner) == manifest["tables"]
    assert "rkr: row counts differ from the manifest" in text
    with pytest.raises(ValueError):
        row_count_check_sql(manifest, "a$b")


def test_gate_rules(tmp_path):
    fresh = make_backup(tmp_path, "fresh", finished=NOW - dt.timedelta(hours=1))
    backups = list_backups(str(tmp_path), "env")
    rules = {"live_fingerprint": fingerprint(OBJECTS), "min_level": "restore",
             "max_age_seconds": 24 * 3600, "now": NOW}
    passed, _ = evaluate_gate(backups, IDENTITY, **rules)
    assert passed["path"] == fresh and not passed["from_this_run"]

    passed, reasons = evaluate_gate(backups, IDENTITY, **rules | {"max_age_seconds": 1800})
    assert passed is None and "1.0 h old, at most 0.5 h allowed" in reasons[0]
    passed, reasons = evaluate_gate(backups, IDENTITY, **rules | {"live_fingerprint": "x"})
    assert passed is None and "the schema changed since this backup" in reasons[0]
    passed, reasons = evaluate_gate(backups, IDENTITY | {"port": 6543}, **rules)
    assert passed is None and "manifest is for database app on db.example:5432" in reasons[0]
    # Verified in this run: neither age nor fingerprint matter.
    passed, _ = evaluate_gate(backups, IDENTITY, **rules | {"max_age_seconds": 0, "live_fingerprint": "x",
                                                             "this_run": fresh})
    assert passed["from_this_run"]

    make_backup(tmp_path / "w", "weak", level="toc")
    passed, reasons = evaluate_gate(list_backups(str(tmp_path / "w"), "env"), IDENTITY, **rules)
    assert passed is None and "verified at toc level, restore required" in reasons[0]
    make_backup(tmp_path / "u", "none", level=None)
    passed, reasons = evaluate_gate(list_backups(str(tmp_path / "u"), "env"), IDENTITY, **rules)
    assert passed is None and "verified at no level" in reasons[0]


def test_gate_rechecks_checksums_and_a_record_binds_to_its_manifest(tmp_path):
    path = make_backup(tmp_path)
    rules = {"live_fingerprint": fingerprint(OBJECTS), "min_level": "checksum",
             "max_age_seconds": 3600, "now": NOW}
    with open(os.path.join(path, "dump.pgc"), "ab") as handle:
        handle.write(b"!")
    passed, reasons = evaluate_gate(list_backups(str(tmp_path), "env"), IDENTITY, **rules)
    assert passed is None and "size mismatch" in reasons[0]

    # A new manifest in the same place does not inherit the old one's verifications.
    other = make_backup(tmp_path / "x", "b1", level="restore")
    manifest = load_manifest(other)
    write_manifest(other, {k: v for k, v in manifest.items() if k != "manifest_checksum"} | {"tables": [1]})
    passed, reasons = evaluate_gate(list_backups(str(tmp_path / "x"), "env"), IDENTITY, **rules)
    assert passed is None and "verified at no level" in reasons[0]


def test_gate_message_ends_with_the_callers_command_or_names_none():
    message = gate_message(IDENTITY, "ansible-playbook playbooks/backup.yml -i inventories/acc", ["a", "b"], "restore")
    assert message.startswith("no verified backup of app on db.example:5432 lets this change run (a; b)")
    assert message.endswith("ansible-playbook playbooks/backup.yml -i inventories/acc")
    # The command is the role's (roles/backup/tasks/gate.yml composes it); none guessed here.
    assert gate_message(IDENTITY, "", [], "restore").endswith("Make one, verified at level restore.")


def test_schema_difference_names_objects():
    assert schema_difference(OBJECTS, OBJECTS[:1]) == "missing column public.users.id"
    assert "extra or changed index" in schema_difference([], [["index", "i", "x"]])


@pytest.mark.parametrize("backup_id", ["", ".hidden", "-x", "a/b", "../up", "x" * 101])
def test_backup_ids_are_plain_folder_names(backup_id):
    with pytest.raises(BackupError):
        check_backup_id(backup_id)


def test_libpq_env_carries_the_password_and_drops_inherited_pg_vars(monkeypatch):
    monkeypatch.setenv("PGSERVICE", "elsewhere")
    monkeypatch.setenv("PGPASSWORD", "inherited")
    env = libpq_env({"database_url": "postgresql://app:s3cret@db.example:6543/app?sslmode=verify-full"
                                     "&sslrootcert=/ca.crt", "connect_timeout": 5})
    assert env["PGPASSWORD"] == "s3cret"
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGDATABASE"]) == ("db.example", "6543", "app", "app")
    assert (env["PGSSLMODE"], env["PGSSLROOTCERT"], env["PGPASSFILE"]) == ("verify-full", "/ca.crt", os.devnull)
    assert "PGSERVICE" not in env


def test_client_output_helpers():
    assert parse_version("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)") == {"text": "15.20", "major": 15}
    assert parse_version("pg_restore (PostgreSQL) 17devel")["major"] == 17
    assert count_toc_lines(";\n; Archive created\n;\n3; 2615 1 SCHEMA x\n\n4; 1 TABLE y\n") == 2
    assert first_error("pg_dump: warning: x\npg_dump: error: query failed\n") == "pg_dump: error: query failed"
