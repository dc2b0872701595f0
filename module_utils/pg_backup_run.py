"""Taking, verifying and restoring pg_dump backups against real servers.

The dump: one REPEATABLE READ, READ ONLY transaction exports its snapshot;
pg_dump runs with --snapshot=<it> while that transaction stays open and counts
every table's rows exactly, so the counts in the manifest describe the very
rows in the dump. Custom format streams through this process: pg_dump writes
to stdout and each chunk is hashed and written as it arrives (no second read).
Directory format (-Fd -j N) writes many files in parallel itself; they are
hashed once pg_dump has finished (one read of each file).

Restore verification restores into a new scratch database on a scratch server
(never the backed-up server) with --single-transaction --exit-on-error,
compares every table's row count, the object counts and the schema fingerprint
with the manifest, and drops the scratch database whatever happened.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import subprocess
import threading
import time

from ansible.module_utils.pg_backup import (
    CHUNK,
    CUSTOM_FILE,
    DIRECTORY_NAME,
    LEVELS,
    MANIFEST_VERSION,
    ROW_COUNT_MISMATCH,
    BackupError,
    HashingWriter,
    check_backup_id,
    check_identity,
    describe_files,
    fingerprint,
    identity_of,
    iso,
    label_dir,
    level_at_least,
    load_manifest,
    lock_exclusive,
    object_counts,
    partial_name,
    passed_levels,
    private_dir,
    record_verification,
    row_count_check_sql,
    schema_difference,
    stale_partials,
    tighten,
    utc_now,
    verify_checksums,
    write_manifest,
)
from ansible.module_utils.pg_backup_tools import (
    ToolError,
    client_version,
    find_client,
    first_error,
    libpq_env,
    restore_via_psql,
    scrub,
    toc_entries,
)
from ansible.module_utils.pg_catalog import CatalogReader
from ansible.module_utils.pg_connection import ConnectionFailure, connect, resolve_connection
from ansible.module_utils.pg_scratch_restore import archive_path, check_restore_versions, scratch_restore

FORMATS = {"custom": "custom", "directory": "directory"}


def _database_errors(func):
    """psycopg2 errors become BackupError with libpq's first line (never a password)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import psycopg2

        try:
            return func(*args, **kwargs)
        except psycopg2.Error as exc:
            text = str(exc).strip().splitlines()
            raise BackupError(f"database error: {text[0] if text else type(exc).__name__}") from None
    return wrapper


def _connect(params: dict, **kwargs):
    try:
        return connect(params, **kwargs)
    except ConnectionFailure as exc:
        raise BackupError(str(exc)) from None


def _snapshot_transaction(params: dict):
    conn = _connect(params)
    conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
    return conn


# -- check mode: what would be dumped ----------------------------------------

@_database_errors
def plan_backup(params: dict, *, backup_dir: str, label: str, backup_id: str, force: bool = False) -> dict:
    """What a dump would do, reading the catalog only; no file is written."""
    check_backup_id(backup_id)
    identity = identity_of(resolve_connection(params))
    final = os.path.join(label_dir(backup_dir, label), backup_id)
    existing = None
    if os.path.isdir(final) and not force:
        existing = load_manifest(final)
        check_identity(existing, identity, final)
    conn = _snapshot_transaction(params)
    try:
        reader = CatalogReader(conn)
        schemas = reader.user_schemas()
        info = reader.database_info()
        return {
            "would_dump": existing is None,
            "path": final,
            "stale_partials": stale_partials(label_dir(backup_dir, label), identity, remove=False),
            "database": identity,
            "tables": len(reader.dumped_tables(schemas)),
            "database_bytes": info["size_bytes"],
            # pg_dump writes table data (no indexes); compression usually shrinks it a lot.
            "estimated_bytes": reader.heap_bytes(schemas),
        }
    finally:
        conn.rollback()
        conn.close()


# -- the dump ------------------------------------------------------------------

@_database_errors
def take_backup(params: dict, *, backup_dir: str, label: str, backup_id: str, fmt: str = "custom",
                jobs: int = 1, compress: str = "", bin_dir: str | None = None,
                force: bool = False) -> dict:
    """Dump into <backup_dir>/<label>/<backup_id>/ with a manifest, or return the
    one already there (same database) unless force. {changed, path, manifest}."""
    if fmt not in FORMATS:
        raise BackupError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if jobs < 1 or (jobs > 1 and fmt != "directory"):
        raise BackupError("jobs > 1 needs the directory format (pg_dump -j works only with -Fd)")
    check_backup_id(backup_id)
    identity = identity_of(resolve_connection(params))
    base = private_dir(label_dir(private_dir(backup_dir), label))
    removed = stale_partials(base, identity)  # a killed run's leftovers, never a live run's
    final = os.path.join(base, backup_id)
    if os.path.isdir(final) and not force:
        try:
            manifest = load_manifest(final)
        except BackupError as exc:
            raise BackupError(f"{exc}; run with force to replace this backup id's contents") from None
        check_identity(manifest, identity, final)
        return {"changed": bool(removed), "path": final, "manifest": manifest, "removed_partials": removed}

    work = private_dir(os.path.join(base, partial_name(backup_id, identity, secrets.token_hex(4))))
    lock = lock_exclusive(work)  # held until the partial is renamed or removed: see stale_partials
    try:
        manifest = _dump_into(params, work, identity=identity, backup_id=backup_id, label=label, fmt=fmt,
                              jobs=jobs, compress=compress, bin_dir=bin_dir)
        tighten(work)
        old = None
        if os.path.isdir(final):
            old = os.path.join(base, f".{backup_id}.replaced-{secrets.token_hex(4)}")
            os.rename(final, old)
        os.rename(work, final)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if os.path.isdir(work):
            shutil.rmtree(work, ignore_errors=True)
        os.close(lock)
    return {"changed": True, "path": final, "manifest": manifest, "removed_partials": removed}


def _widen_pipe(fd: int) -> None:
    """A 1 MiB pipe (Linux) so pg_dump rarely waits for us to read."""
    with contextlib.suppress(ImportError, OSError, AttributeError):
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), CHUNK)


def _dump_into(params, work, *, identity, backup_id, label, fmt, jobs, compress, bin_dir) -> dict:
    pg_dump = find_client("pg_dump", bin_dir)
    pg_restore = find_client("pg_restore", bin_dir)
    dump_version = client_version(pg_dump)
    env = libpq_env(params, application="render-key-recovery pg_dump")

    conn = _snapshot_transaction(params)
    proc = counter = None
    try:
        reader = CatalogReader(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot(), current_setting('server_encoding')")
            snapshot, encoding = cur.fetchone()
            # The counts run beside pg_dump: one backend, no parallel workers competing with it.
            cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        server = reader.server_version()
        if dump_version["major"] < server["major"]:
            raise BackupError(f"pg_dump {dump_version['text']} cannot dump a PostgreSQL {server['text']} "
                              f"server: install client tools of major version {server['major']} or newer")
        schemas = reader.user_schemas()
        objects = reader.schema_objects(schemas)
        tables = reader.dumped_tables(schemas)
        policy_roles = reader.policy_roles(schemas)

        argv = [pg_dump, "--no-password", f"--snapshot={snapshot}", f"--format={FORMATS[fmt]}"]
        if compress:
            argv.append(f"--compress={compress}")
        target = os.path.join(work, CUSTOM_FILE if fmt == "custom" else DIRECTORY_NAME)
        if fmt == "directory":
            argv += [f"--jobs={jobs}", f"--file={target}"]
        started = utc_now()
        clock = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                stdout=subprocess.PIPE if fmt == "custom" else subprocess.DEVNULL,
                                umask=0o077)
        if fmt == "custom":
            _widen_pipe(proc.stdout.fileno())
        stderr_chunks: list[bytes] = []
        stderr_thread = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()),
                                         daemon=True)
        stderr_thread.start()
        # Exact counts in the exported snapshot, while pg_dump reads the same snapshot.
        counts: dict[str, int] = {}
        count_error: list[BaseException] = []

        def count_rows():
            try:
                for schema, table, name in tables:
                    counts[name] = reader.exact_row_count(schema, table)
            except BaseException as exc:  # reported below
                count_error.append(exc)

        counter = threading.Thread(target=count_rows, daemon=True)
        counter.start()

        files = None
        if fmt == "custom":
            writer = HashingWriter(target)
            try:
                head = b""
                for chunk in iter(lambda: proc.stdout.read(CHUNK), b""):
                    if len(head) < 5:
                        head += chunk[:5]
                    writer.write(chunk)
                described = writer.close()
            except BaseException:
                writer.abort()
                raise
            files = [{"path": CUSTOM_FILE} | described]
        returncode = proc.wait()
        stderr_thread.join()
        stderr = scrub(b"".join(stderr_chunks).decode("utf-8", "replace"), env)
        dump_failed = returncode != 0 or "error:" in stderr
        if dump_failed and counter.is_alive():
            conn.cancel()  # its error is pg_dump's doing, not a cause
            counter.join()
            count_error.clear()
        counter.join()
        if count_error:
            # A failed count aborts the snapshot's transaction; pg_dump then fails too.
            cause = str(count_error[0]).strip().splitlines() or [type(count_error[0]).__name__]
            also = f" (then {first_error(stderr)})" if dump_failed else ""
            raise BackupError(f"counting rows in the dump's snapshot failed: {cause[0]}{also}")
        if dump_failed:
            raise BackupError(f"pg_dump failed (exit {returncode}): {first_error(stderr)}")
        if fmt == "custom" and not head.startswith(b"PGDMP"):
            raise BackupError("pg_dump wrote no custom-format archive (no PGDMP header)")
        dump_seconds = time.monotonic() - clock
        finished = utc_now()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if counter is not None and counter.is_alive():
            with contextlib.suppress(Exception):
                conn.cancel()
            counter.join()
        with contextlib.suppress(Exception):
            conn.rollback()
        conn.close()

    if files is None:
        tighten(target)
        files = [f | {"path": f"{DIRECTORY_NAME}/{f['path']}"} for f in describe_files(target)]
    try:
        toc = toc_entries(pg_restore, target)
    except ToolError as exc:
        raise BackupError(str(exc)) from None
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "backup_id": backup_id,
        "label": label,
        "database": identity,
        "encoding": encoding,
        "server_version": server["text"],
        "server_major": server["major"],
        "pg_dump_version": dump_version["text"],
        "pg_dump_major": dump_version["major"],
        "format": fmt,
        "jobs": jobs,
        "compress": compress or "default",
        "hashing": "streamed while written" if fmt == "custom" else "per file after pg_dump finished",
        "started_at": iso(started),
        "finished_at": iso(finished),
        "dump_seconds": round(dump_seconds, 3),
        "snapshot": snapshot,
        "toc_entries": toc,
        "files": files,
        "total_bytes": sum(f["size"] for f in files),
        "schemas": schemas,
        "tables": [{"name": name, "schema": schema, "table": table, "rows": counts[name]}
                   for schema, table, name in tables],
        "rows": sum(counts.values()),
        "objects": object_counts(objects),
        "schema_fingerprint": fingerprint(objects),
        "schema_objects": [list(row) for row in objects],
        "policy_roles": policy_roles,
        "pg_dump_warnings": [line for line in stderr.splitlines() if line.strip()],
    }
    return write_manifest(work, manifest)


# -- verification --------------------------------------------------------------

@_database_errors
def verify_backup(path: str, level: str, *, identity: dict | None = None, scratch: dict | None = None,
                  bin_dir: str | None = None, run_id: str = "", reuse: bool = True,
                  record: bool = True) -> dict:
    """Verify at level (checksum < toc < restore); each level includes the weaker ones.
    The checksum is always verified now. A restore already recorded as passed for
    this exact manifest is reused when reuse: the bytes verified now are the ones
    that were restored. Failures raise BackupError with every problem found."""
    if level not in LEVELS:
        raise BackupError(f"verification level must be one of {', '.join(LEVELS)}, not {level!r}")
    manifest = None
    try:
        manifest = verify_checksums(path, identity)
        result = {"path": path, "level": level, "checked": ["checksum"], "reused": [],
                  "files": len(manifest["files"]), "bytes": manifest["total_bytes"]}
        if level_at_least(level, "toc"):
            try:
                entries = toc_entries(find_client("pg_restore", bin_dir), archive_path(path, manifest))
            except ToolError as exc:
                raise BackupError(f"{path}: {exc}") from None
            if entries != manifest["toc_entries"]:
                raise BackupError(f"{path}: TOC has {entries} entries, the manifest says "
                                  f"{manifest['toc_entries']}")
            result["checked"].append("toc")
        if level == "restore":
            if reuse and "restore" in passed_levels(path, manifest):
                result["reused"].append("restore")
            else:
                if not scratch:
                    raise BackupError("restore verification needs a scratch server (a URL whose role may "
                                      "create databases); none was given")
                try:
                    result["restore"] = restore_check(path, manifest, scratch, bin_dir=bin_dir)
                except ToolError as exc:
                    raise BackupError(f"{path}: {exc}") from None
                result["checked"].append("restore")
    except BackupError as exc:
        if record and manifest is not None:
            record_verification(path, manifest, level, False, run_id, str(exc))
        raise
    if record:
        record_verification(path, manifest, level, True, run_id,
                            "checked " + ", ".join(result["checked"])
                            + (f"; reused {', '.join(result['reused'])}" if result["reused"] else ""))
    result["manifest"] = manifest
    return result


def restore_check(path: str, manifest: dict, scratch: dict, *, bin_dir: str | None = None) -> dict:
    """Restore into a new scratch database, compare with the manifest, drop it."""
    with scratch_restore(path, manifest, scratch, bin_dir=bin_dir, purpose="verify") as (target, restored):
        problems, details = compare_with_manifest(target, manifest, check_schema=True)
        if problems:
            raise BackupError(f"{path}: the restored scratch database differs from the manifest: "
                              + "; ".join(problems))
    return details | {"restore_seconds": restored["restore_seconds"], "scratch_server": restored["scratch_server"]}


def compare_with_manifest(params: dict, manifest: dict, *, check_schema: bool) -> tuple[list[str], dict]:
    """Row counts of every table in the manifest (and, with check_schema, the
    object counts and schema fingerprint) against a database; (problems, details)."""
    conn = _connect(params)
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        reader = CatalogReader(conn)
        schemas = reader.user_schemas()
        present = {name: (schema, table) for schema, table, name in reader.dumped_tables(schemas)}
        problems, rows = [], 0
        for entry in manifest["tables"]:
            if entry["name"] not in present:
                problems.append(f"table {entry['name']} missing")
                continue
            count = reader.exact_row_count(entry["schema"], entry["table"])
            rows += count
            if count != entry["rows"]:
                problems.append(f"row count mismatch for {entry['name']}: {count} restored, "
                                f"{entry['rows']} in the manifest")
        extra = sorted(set(present) - {t["name"] for t in manifest["tables"]})
        details = {"tables_checked": len(manifest["tables"]), "rows_checked": rows, "extra_tables": extra}
        if check_schema:
            objects = reader.schema_objects(schemas)
            counts = object_counts(objects)
            if counts != manifest["objects"]:
                diff = {k: f"{counts.get(k, 0)} restored, {manifest['objects'].get(k, 0)} in the manifest"
                        for k in sorted(set(counts) | set(manifest["objects"]))
                        if counts.get(k, 0) != manifest["objects"].get(k, 0)}
                problems.append("object counts differ: " + ", ".join(f"{k} {v}" for k, v in diff.items()))
            if fingerprint(objects) != manifest["schema_fingerprint"]:
                problems.append("schema fingerprint differs: "
                                + schema_difference(manifest["schema_objects"], objects))
            elif extra:
                problems.append(f"tables not in the manifest: {', '.join(extra)}")
            details["objects"] = counts
        return problems, details
    finally:
        conn.rollback()
        conn.close()


# -- restoring into the real database ----------------------------------------

@_database_errors
def restore_backup(params: dict, path: str, *, bin_dir: str | None = None, clean: bool = True,
                   no_owner: bool = False, allow_other_database: bool = False,
                   check_mode: bool = False) -> dict:
    """Verify the checksums, then restore into the database in one transaction
    whose row counts are compared with the manifest before its COMMIT.

    pg_restore cannot run SQL before its own COMMIT, so it writes its
    --single-transaction script to a pipe and psql (ON_ERROR_STOP) runs it, with
    the row-count check inserted just before the final COMMIT: a difference, like
    any error, rolls everything back."""
    identity = identity_of(resolve_connection(params))
    manifest = verify_checksums(path, None if allow_other_database else identity)
    pg_restore = find_client("pg_restore", bin_dir)
    psql = find_client("psql", bin_dir)
    conn = _connect(params)
    try:
        server = CatalogReader(conn).server_version()
    finally:
        conn.rollback()
        conn.close()
    check_restore_versions(manifest, pg_restore, server, "the target server")
    plan = {"path": path, "backup_id": manifest["backup_id"], "taken_at": manifest["finished_at"],
            "tables": len(manifest["tables"]), "rows": manifest["rows"], "bytes": manifest["total_bytes"],
            "clean": clean}
    if check_mode:
        return plan | {"restored": False}
    restore_argv = [pg_restore, "--single-transaction", "--exit-on-error", "--file=-"]
    if clean:
        restore_argv += ["--clean", "--if-exists"]
    if no_owner:
        restore_argv.append("--no-owner")
    restore_argv.append(archive_path(path, manifest))
    psql_argv = [psql, "--no-psqlrc", "--no-password", "--quiet", "--set=ON_ERROR_STOP=1", "--file=-"]
    env = libpq_env(params, application="render-key-recovery restore")
    clock = time.monotonic()
    try:
        done = restore_via_psql(restore_argv, psql_argv, env,
                                row_count_check_sql(manifest, secrets.token_hex(6)))
    except OSError as exc:
        raise BackupError(f"cannot run pg_restore or psql: {exc.strerror}") from None
    seconds = time.monotonic() - clock
    if not done["committed"]:
        raise BackupError("restore rolled back, nothing committed (the database is as it was): "
                          + _restore_failure(done))
    details = {"tables_checked": len(manifest["tables"]), "rows_checked": manifest["rows"],
               "extra_tables": tables_beyond(params, manifest), "counts_checked_before_commit": True}
    return plan | details | {"restored": True, "restore_seconds": round(seconds, 3)}


def _restore_failure(done: dict) -> str:
    if done["restore_rc"] != 0:
        return f"pg_restore failed (exit {done['restore_rc']}): {first_error(done['restore_stderr'])}"
    if not done["commit_sent"] and done["psql_rc"] == 0:
        return "pg_restore's script had no final COMMIT; nothing was sent to commit"
    for line in done["psql_stderr"].splitlines():
        if ROW_COUNT_MISMATCH in line:
            return line[line.index(ROW_COUNT_MISMATCH):].strip()
    return f"psql (exit {done['psql_rc']}): {first_error(done['psql_stderr'])}"


def tables_beyond(params: dict, manifest: dict) -> list[str]:
    """Tables in the database that the backup does not hold (created after it; left alone)."""
    conn = _connect(params)
    try:
        reader = CatalogReader(conn)
        present = {name for _schema, _table, name in reader.dumped_tables(reader.user_schemas())}
        return sorted(present - {t["name"] for t in manifest["tables"]})
    finally:
        conn.rollback()
        conn.close()


# -- the gate ------------------------------------------------------------------

@_database_errors
def live_fingerprint(params: dict) -> str:
    """The schema fingerprint of the database as it is now (read-only)."""
    conn = _snapshot_transaction(params)
    try:
        reader = CatalogReader(conn)
        return fingerprint(reader.schema_objects(reader.user_schemas()))
    finally:
        conn.rollback()
        conn.close()
