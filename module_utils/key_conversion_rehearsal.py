"""Rehearse a key conversion on a scratch restore of a verified backup.

The live database's plan is made first (read-only). The backup is restored into
a new database on a scratch server, the same request is planned there and must
give the same plan (columns, foreign keys, dependents), then the conversion runs
there for real and its plan afterwards must be empty. A plan that would fail,
roll back or refuse on the live database fails here first, on a copy; a success
gives the measured duration to expect. The scratch database is dropped whatever
happened; the live database is only read.
"""

from __future__ import annotations

import time

from ansible.module_utils.key_conversion_plan import ConversionRequest
from ansible.module_utils.key_conversion_run import ConversionError, RunOptions, convert, plan_only
from ansible.module_utils.pg_backup_manifest import verify_checksums
from ansible.module_utils.pg_backup_store import BackupError
from ansible.module_utils.pg_connection import ConnectionFailure, connect
from ansible.module_utils.pg_scratch_restore import scratch_restore

# What must be equal between the live plan and the scratch plan for the
# rehearsal to stand for the real run (timings and sizes may differ).
SAME_PLAN_KEYS = ("columns", "foreign_keys", "views", "policies", "triggers", "rules", "refusals",
                  "generated_columns", "unconverted_writers")


class RehearsalError(Exception):
    """The rehearsal failed; the live database was not changed."""


def plan_difference(live: dict, scratch: dict) -> list[str]:
    """What differs between two plan summaries in what the run will do."""
    problems = []
    for key in SAME_PLAN_KEYS:
        ours, theirs = set(map(str, live.get(key) or [])), set(map(str, scratch.get(key) or []))
        if ours != theirs:
            only_live = sorted(ours - theirs)
            only_backup = sorted(theirs - ours)
            parts = []
            if only_live:
                parts.append("only live: " + ", ".join(only_live[:5]) + (" ..." if len(only_live) > 5 else ""))
            if only_backup:
                parts.append("only in the backup: " + ", ".join(only_backup[:5])
                             + (" ..." if len(only_backup) > 5 else ""))
            problems.append(f"{key} ({'; '.join(parts)})")
    return problems


def _database_locale(conn) -> str:
    with conn.cursor() as cur:
        cur.execute("SELECT datcollate FROM pg_database WHERE datname = current_database()")
        return cur.fetchone()[0]


def rehearse(live_conn, backup_path: str, scratch: dict, request: ConversionRequest, *,
             options: RunOptions, bin_dir: str | None = None) -> dict:
    """Run request on a scratch restore of backup_path; return the plan and measured
    figures. Raises RehearsalError (nothing live changed) when it would not succeed."""
    live = plan_only(live_conn, request)["plan"].summary()
    if live["refusals"]:
        raise RehearsalError("the plan is refused on the live database: " + "; ".join(live["refusals"]))
    locale = _database_locale(live_conn)
    live_conn.rollback()
    try:
        manifest = verify_checksums(backup_path)
        with scratch_restore(backup_path, manifest, scratch, bin_dir=bin_dir, purpose="rehearse",
                             locale=locale) as (target, restored):
            try:
                conn = connect(target)
            except ConnectionFailure as exc:
                raise RehearsalError(f"the scratch restore could not be reached: {exc}") from None
            try:
                return _rehearse_on(conn, target, live, request, options) | {
                    "backup": backup_path, "restore_seconds": restored["restore_seconds"],
                    "scratch_server": restored["scratch_server"], "scratch_locale": restored["locale"],
                    "live_locale": locale}
            finally:
                conn.close()
    except BackupError as exc:
        raise RehearsalError(f"could not restore the backup for the rehearsal: {exc}") from None


def _rehearse_on(conn, target: dict, live: dict, request: ConversionRequest, options: RunOptions) -> dict:
    scratch = plan_only(conn, request)["plan"].summary()
    difference = plan_difference(live, scratch)
    if difference:
        raise RehearsalError("the backup's schema gives another plan than the live database, so a rehearsal "
                             "on it proves nothing (take a new backup): " + "; ".join(difference))
    options.connect = lambda: connect(target)
    import psycopg2

    clock = time.monotonic()
    try:
        outcome = convert(conn, request, options)
    except (ConversionError, psycopg2.Error) as exc:
        # A database error's first line is libpq's message; the rest is context and hints.
        reason = (str(exc) if isinstance(exc, ConversionError)
                  else (str(exc).strip() or type(exc).__name__).splitlines()[0])
        raise RehearsalError(f"the conversion failed on the scratch restore and was rolled back there; "
                             f"the real run would fail the same way: {reason}") from None
    seconds = round(time.monotonic() - clock, 3)
    if outcome.get("post_commit_errors"):
        raise RehearsalError("the conversion committed on the scratch restore but its work after commit "
                             "failed: " + "; ".join(outcome["post_commit_errors"]))
    after = plan_only(conn, request)["plan"]
    if after.needed or after.refusals:
        raise RehearsalError("after the rehearsal's conversion a second plan is not empty: "
                             + ", ".join(after.summary()["columns"] + after.refusals))
    return {"plan": live, "seconds": seconds, "timings": outcome["timings"],
            "columns_converted": len(live["columns"]), "tables_rewritten": len(live["tables"]),
            "fk_count_before": outcome["fk_count_before"], "fk_count_after": outcome["fk_count_after"]}
