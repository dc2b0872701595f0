"""The online expand's data work: short DDL steps retried on lock timeouts,
the batched backfill of the shadow columns, and the concurrent index builds.

Every step is idempotent and finds its own progress in the catalog (a shadow
that exists, a proof check that is validated, an index that is valid), so a
killed run's successor picks up where it stopped. The backfill walks the
table by page ranges (TID range scans); each batch is its own short
transaction and only touches rows whose shadow differs.
"""

from __future__ import annotations

import random
import time
from contextlib import suppress

from ansible.module_utils import key_conversion_online_sql as sql
from ansible.module_utils.key_conversion_run import maintenance_fence
from ansible.module_utils.key_conversion_sql import ident

LOCK_FAILURES = frozenset({"55P03", "40P01"})  # lock_timeout, deadlock: nothing done, try again
ENABLE = {"O": "ENABLE TRIGGER", "A": "ENABLE ALWAYS TRIGGER", "R": "ENABLE REPLICA TRIGGER"}
PROGRESS_SECONDS = 5.0
# How long a step waits, per table, behind a VACUUM, ANALYZE or index build before
# its own short lock (maintenance_fence): an autovacuum is cancelled after
# deadlock_timeout; a manual one, or one preventing wraparound, is waited for.
MAINTENANCE_WAIT_MS = 60_000
ROWS_PER_PAGE_GUESS = 100  # a table never analyzed


class ExpandError(Exception):
    """An expand step failed; what was done before it stays and is reused."""


def run_steps(conn, statements: list, options, *, what: str, counted: int | None = None, params=None,
              fence: str | None = None) -> int:
    """Run ``statements`` in one transaction with the run's lock_timeout, again
    (bounded, with backoff) when a lock could not be had. ``params`` go to the
    statement at position ``counted``, whose row count is returned. ``fence``:
    the table whose SHARE UPDATE EXCLUSIVE lock is taken first, waiting out a
    VACUUM (maintenance_fence), for statements locking it more than writes do."""
    for attempt in range(options.lock_retries + 1):
        try:
            conn.rollback()
            rows = 0
            if fence:
                maintenance_fence(conn, [fence], MAINTENANCE_WAIT_MS)
            with conn.cursor() as cur:
                cur.execute("SELECT set_config('lock_timeout', %s, true)", (f"{options.lock_timeout_ms}ms",))
                for number, statement in enumerate(statements):
                    cur.execute(statement, params if number == counted else None)
                    if number == counted:
                        rows = cur.rowcount
            conn.commit()
            return rows
        except Exception as exc:
            conn.rollback()
            if getattr(exc, "pgcode", None) not in LOCK_FAILURES or attempt == options.lock_retries:
                raise ExpandError(f"{what} failed after {attempt + 1} attempts: {str(exc).strip()}") from None
            delay = options.retry_base_seconds * 2 ** attempt
            options.sleep(delay + random.uniform(0, delay))  # noqa: S311 -- jitter, not crypto
    return 0  # not reached


def current_pages(conn, relation: str) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int", (relation,))
        pages = cur.fetchone()[0]
    conn.commit()
    return pages


def backfill(conn, table, options, *, batch_rows: int, pause_seconds: float, say, clock=time.monotonic) -> dict:
    """Fill ``table``'s shadows page range by page range; returns rows written,
    batches and seconds. Only the pages the table has when the backfill starts:
    the sync trigger was committed before, so every row version written since
    (an app's insert or update, the backfill's own new versions at the table's
    end) got its shadows from the trigger; the VALIDATE after proves it.

    A table with UPDATE triggers of its own has them off for each batch's
    transaction only (ALTER TABLE ... DISABLE TRIGGER is transactional: the
    app's writes to that table wait for the batch, then see them on)."""
    rows_per_page = table.rows // table.pages if table.rows and table.pages else ROWS_PER_PAGE_GUESS
    pages_per_batch = max(1, batch_rows // max(rows_per_page, 1))
    statements = [f"ALTER TABLE {table.relation} DISABLE TRIGGER {ident(t['name'])}" for t in table.update_triggers]
    counted = len(statements)
    statements.append(sql.backfill_batch(table.relation, table.columns))
    statements += [f"ALTER TABLE {table.relation} {ENABLE[t['enabled']]} {ident(t['name'])}"
                   for t in table.update_triggers]
    start_time = last_said = clock()
    page, written, batches = 0, 0, 0
    pages = current_pages(conn, table.relation)
    while page < pages:
        end = page + pages_per_batch
        written += max(0, run_steps(conn, statements, options, counted=counted, params=(f"({page},0)", f"({end},0)"),
                                    what=f"backfill of {table.relation} pages {page}-{end}",
                                    fence=table.relation if table.update_triggers else None))
        batches += 1
        page = end
        now = clock()
        if now - last_said >= PROGRESS_SECONDS:
            last_said = now
            done = min(page, pages) / pages
            eta = (now - start_time) * (1 - done) / done
            say(f"backfill {table.relation}: {written} rows (~{table.rows} estimated), page {min(page, pages)}/"
                f"{pages} ({done:.0%}), about {eta:.0f} s left")
        if pause_seconds:
            options.sleep(pause_seconds)
    return {"rows": written, "batches": batches, "seconds": round(clock() - start_time, 3)}


def run_outside_a_transaction(conn, statements: list[str], memory: str | None = None) -> None:
    """Statements that refuse a transaction block (CREATE/DROP INDEX CONCURRENTLY),
    each its own; waiting for older transactions blocks nobody here (SHARE UPDATE
    EXCLUSIVE), so no lock timeout. ``memory``: maintenance_work_mem for them
    (an index build sorts in it)."""
    conn.rollback()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SET lock_timeout = 0")
            if memory:
                cur.execute("SELECT set_config('maintenance_work_mem', %s, false)", (memory,))
            for statement in statements:
                cur.execute(statement)
    finally:
        # Back to the session's defaults even when a statement failed: the connection is used
        # again (the next table, the abort), and must not keep this memory or lock_timeout 0.
        with suppress(Exception), conn.cursor() as cur:
            cur.execute("RESET lock_timeout" + ("; RESET maintenance_work_mem" if memory else ""))
        conn.autocommit = False


def build_index(conn, schema: str, relation: str, index: dict, shadows: dict, valid: bool | None, say,
                memory: str | None = None) -> list[str]:
    """CREATE INDEX CONCURRENTLY of one shadow index (an invalid one a killed
    build left is dropped first), sorting in ``memory`` (the offline mode's
    maintenance_work_mem for its index builds); returns the statements run."""
    if valid:
        return []
    statements = []
    if valid is False:
        statements.append(sql.drop_shadow_index(ident(schema), index))
    statements.append(sql.create_shadow_index(relation, index, shadows))
    say(f"building index {sql.shadow_index(index['bare_name'])} on {relation} concurrently")
    try:
        run_outside_a_transaction(conn, statements, memory)
    except Exception as exc:
        raise ExpandError(f"building index {sql.shadow_index(index['bare_name'])} on {relation} failed (a re-run "
                          f"drops and builds it again): {str(exc).strip()}") from None
    return statements
