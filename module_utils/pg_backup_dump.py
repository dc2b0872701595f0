"""Taking a pg_dump backup, and check mode's plan of one.

One REPEATABLE READ, READ ONLY transaction exports its snapshot; pg_dump runs
with --snapshot=<it> while that transaction stays open and counts every table's
rows exactly, so the counts in the manifest describe the very rows in the dump.
Custom format streams through this process: pg_dump writes to stdout and each
chunk is hashed and written as it arrives (no second read). Directory format
(-Fd -j N) writes many files in parallel itself; they are hashed once pg_dump
has finished (one read of each file).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import threading
import time

from ansible.module_utils.pg_backup_database import database_errors, snapshot_transaction
from ansible.module_utils.pg_backup_manifest import (
    MANIFEST_VERSION,
    check_identity,
    identity_of,
    load_manifest,
    write_manifest,
)
from ansible.module_utils.pg_backup_store import (
    CHUNK,
    CUSTOM_FILE,
    DIRECTORY_NAME,
    BackupError,
    HashingWriter,
    check_backup_id,
    describe_files,
    iso,
    label_dir,
    lock_exclusive,
    partial_name,
    private_dir,
    stale_partials,
    tighten,
    utc_now,
)
from ansible.module_utils.pg_catalog import CatalogReader
from ansible.module_utils.pg_catalog_fingerprint import fingerprint, object_counts
from ansible.module_utils.pg_client_programs import (
    ToolError,
    client_version,
    find_client,
    first_error,
    libpq_env,
    scrub,
    toc_entries,
)
from ansible.module_utils.pg_connection import resolve_connection

FORMATS = {"custom": "custom", "directory": "directory"}


# -- check mode: what would be dumped ------------------------------------------

@database_errors
def plan_backup(params: dict, *, backup_dir: str, label: str, backup_id: str, force: bool = False) -> dict:
    """What a dump would do, reading the catalog only; no file is written."""
    check_backup_id(backup_id)
    identity = identity_of(resolve_connection(params))
    final = os.path.join(label_dir(backup_dir, label), backup_id)
    existing = None
    if os.path.isdir(final) and not force:
        existing = load_manifest(final)
        check_identity(existing, identity, final)
    conn = snapshot_transaction(params)
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

@database_errors
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

    conn = snapshot_transaction(params)
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
