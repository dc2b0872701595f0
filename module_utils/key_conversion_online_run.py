"""Run an online key conversion: expand while the app runs, one short swap,
contract after it; or abort, removing what an expand added.

Before the swap commits, the app works on the old columns (the shadows are
extra columns it never names); after, on the new ones. The swap is catalog
work only: its statements and checks read no table, so its exclusive lock does
not grow with the row count. What follows the swap (FK and check validation,
ANALYZE, indexes that could not be built before it) is recorded in the same
durable list as the offline mode's work after COMMIT, inside the swap's
transaction, and a re-run finishes it.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from contextlib import suppress

from ansible.module_utils import key_conversion_after_commit_list as pending
from ansible.module_utils import key_conversion_online_backfill as data
from ansible.module_utils import key_conversion_online_catalog as catalog
from ansible.module_utils import key_conversion_online_sql as sql
from ansible.module_utils.key_conversion_after_commit import open_extra, run_on
from ansible.module_utils.key_conversion_online_plan import build_online_plan, fk_lock_order, kept_indexes
from ansible.module_utils.key_conversion_run import (
    ConversionError,
    finish_leftover,
    memory_setting,
    one_run_at_a_time,
    run_recorded,
    take_locks,
)
from ansible.module_utils.key_conversion_sql import ident
from ansible.module_utils.key_conversion_validate import capture, validate
from ansible.module_utils.pg_catalog import CatalogReader

SWAP_STATEMENTS_PER_ROUND_TRIP = 25
# Connections the expand works on, one table each at a time: a backfill batch waits
# on its commit's WAL flush and an index build on older transactions, so more
# connections than cores keep them busy (1 GB on 2 cores: expand 62.7 s on 2, 58.2 s
# on 3, 53-59 s on 4). Each is one more session beside the app's.
ONLINE_WORKERS = 4


def plan_online(conn, request, *, allow_rewrite: bool):
    """Check mode: the three phases from the catalog, in a read-only transaction."""
    conn.rollback()
    conn.set_session(readonly=True)
    try:
        reader = CatalogReader(conn)
        plan = build_online_plan(reader, request, reader.database_info()["user"], allow_rewrite=allow_rewrite)
        return {"plan": plan, "fk_count": len(reader.foreign_keys())}
    finally:
        conn.rollback()
        conn.set_session(readonly=False)


def _timed(timings: dict, name: str, start: float) -> None:
    timings[name] = round(timings.get(name, 0) + time.monotonic() - start, 3)


def convert_online(conn, request, options, *, batch_rows: int, pause_seconds: float, allow_rewrite: bool,
                   workers: int = ONLINE_WORKERS) -> dict:
    """Expand (on ``workers`` connections from options.connect), swap, contract.
    One run per database at a time (the offline mode's advisory lock). Raises
    ConversionError: before the swap commits, the old columns are still the
    app's and a re-run resumes the expand."""
    with one_run_at_a_time(conn):
        return _convert_online(conn, request, options, batch_rows, pause_seconds, allow_rewrite, workers)


def _convert_online(conn, request, options, batch_rows, pause_seconds, allow_rewrite, workers) -> dict:
    say = options.progress or (lambda message: None)
    timings = options.timings
    reader = CatalogReader(conn)
    conn.rollback()
    conn.autocommit = False
    start = time.monotonic()
    leftover_done, leftover_errors = finish_leftover(conn, options, say)
    _timed(timings, "earlier_run", start)
    start = time.monotonic()
    user = reader.database_info()["user"]
    plan = build_online_plan(reader, request, user, allow_rewrite=allow_rewrite)
    fk_count = len(reader.foreign_keys())
    conn.rollback()
    _timed(timings, "plan", start)
    result = {"plan": plan, "fk_count_before": fk_count, "fk_count_after": fk_count, "timings": timings,
              "lock_attempts": [], "executed_sql": list(leftover_done), "post_commit_errors": leftover_errors,
              "backfill": {}}
    if plan.refusals:
        raise ConversionError("refused before any change: " + "; ".join(plan.refusals),
                              {"refusals": plan.refusals, "plan": plan.summary()})
    if not plan.needed:
        timings.setdefault("exclusive_lock", 0.0)
        return result | {"changed": bool(leftover_done or leftover_errors)}
    if leftover_errors:
        raise ConversionError("an earlier run's work after its commit is still unfinished, nothing new was "
                              "started: " + "; ".join(leftover_errors),
                              {"post_commit_errors": leftover_errors, "executed_sql": leftover_done})
    try:
        start = time.monotonic()
        _expand(conn, plan, options, batch_rows, pause_seconds, say, result, workers)
        _timed(timings, "expand", start)
    except data.ExpandError as exc:
        raise ConversionError(f"expand stopped, the app still works on the old columns and a re-run goes on "
                              f"from here: {exc}", {"executed_sql": result["executed_sql"]}) from None
    return _swap_and_contract(conn, reader, request, options, user, allow_rewrite, say, result)


def _expand(conn, plan, options, batch_rows, pause_seconds, say, result, workers) -> None:
    """Each table's expand, on up to ``workers`` connections at once
    (one table per connection at a time); the first failure stops the others
    after their current step, and every finished step stays."""
    tables: queue.Queue = queue.Queue()
    for number, table in enumerate(plan.tables, 1):
        tables.put((number, table))
    errors, lock = [], threading.Lock()

    def prepare(extra):
        pending.hold_worker_lock(extra)  # a dead run's backend keeps the next run waiting, as after COMMIT
        extra.commit()

    workers = workers if options.connect else 1
    connections = [conn, *open_extra(options.connect, min(workers, len(plan.tables)) - 1, prepare, say, "expand")]

    def work(connection):
        while not errors:
            try:
                number, table = tables.get_nowait()
            except queue.Empty:
                return
            say(f"expand {number}/{len(plan.tables)}: {table.relation}")
            try:
                _expand_table(connection, plan, table, options, batch_rows, pause_seconds, say, result, lock)
            except Exception as exc:
                with lock:
                    errors.append(str(exc).strip())

    run_on(connections, work)
    if errors:
        raise data.ExpandError("; ".join(errors))


def _expand_table(conn, plan, table, options, batch_rows, pause_seconds, say, result, lock) -> None:
    rel, done = table.relation, table.expand_done()
    executed = []
    try:
        if not (done["columns"] and done["sync"] and done["check"]):
            # One transaction: a shadow column exists only with its sync trigger and proof
            # check, so a column of that name without them is someone else's (the plan refuses it).
            statements = [sql.add_shadow_columns(rel, table.columns, plan.offline.collation),
                          sql.drop_sync_trigger(rel), sql.create_sync_function(table.schema, rel, table.columns),
                          sql.comment_sync_function(table.schema, rel, table.columns),
                          *sql.create_sync_trigger(table.schema, rel),
                          sql.drop_proof_check(rel), *sql.add_proof_check(rel, table.columns)]
            data.run_steps(conn, statements, options, what=f"adding the shadow columns of {rel}", fence=rel)
            executed += statements
        if not done["backfill"]:
            filled = data.backfill(conn, table, options, batch_rows=batch_rows, pause_seconds=pause_seconds, say=say)
            with lock:
                result["backfill"][rel] = filled
            executed.append(f"-- backfill {rel}: {filled['rows']} rows in {filled['batches']} batches")
            statement = sql.vacuum_after_backfill(rel)
            try:
                data.run_outside_a_transaction(conn, [statement], memory_setting(options, plan.offline))
            except Exception as exc:
                raise data.ExpandError(f"{statement} failed (a re-run backfills what is left and runs it "
                                       f"again): {str(exc).strip()}") from None
            executed.append(statement)
            # A full scan under SHARE UPDATE EXCLUSIVE: the app reads and writes on.
            statement = sql.validate_proof_check(rel)
            data.run_steps(conn, [statement], options, what=f"validating the proof check on {rel}", fence=rel)
            executed.append(statement)
        shadows = {c["column"]: c["shadow"] for c in table.columns}
        for index in table.shadow_indexes:
            valid = table.state.get("indexes", {}).get(sql.shadow_index(index["bare_name"]))
            executed += data.build_index(conn, table.schema, rel, index, shadows, valid, say,
                                         memory_setting(options, plan.offline))
    finally:
        with lock:
            result["executed_sql"] += executed


def swap_lock_budget(conn, options) -> int:
    """Milliseconds the swap may spend taking its locks, all of them, and each
    later wait inside it: the run's lock timeout, at most 0.4 deadlock_timeout.
    While it waits it holds the tables it locked first, and an app transaction
    queued on one of those may wait for a table the swap asks for next: a
    deadlock, which the server breaks by failing whichever session checks
    first, after deadlock_timeout. Giving up well within that, the swap is
    always the one to step back and retry; the app's transaction never fails."""
    with conn.cursor() as cur:
        cur.execute("SELECT EXTRACT(epoch FROM current_setting('deadlock_timeout')::interval) * 1000")
        deadlock_ms = float(cur.fetchone()[0])
    conn.rollback()
    return max(50, min(options.lock_timeout_ms, int(deadlock_ms * 0.4)))


def _swap_and_contract(conn, reader, request, options, user, allow_rewrite, say, result) -> dict:
    timings, lock_attempts, executed = options.timings, result["lock_attempts"], result["executed_sql"]
    budget = swap_lock_budget(conn, options)
    swap_options = dataclasses.replace(options, lock_timeout_ms=budget)  # each wait inside the swap too
    for attempt in range(options.lock_retries + 1):
        start = time.monotonic()
        plan = build_online_plan(reader, request, user, allow_rewrite=allow_rewrite)
        relations = fk_lock_order(plan.offline.lock_relations, plan.offline.foreign_keys)
        planned_on = catalog.signature(conn, relations)
        conn.rollback()
        say(f"swap: locking {len(relations)} relations (attempt {attempt + 1})")
        locked = take_locks(conn, reader, relations, swap_options, attempt, lock_attempts,
                            memory_setting(options, plan.offline), total_ms=budget,
                            fence_ms=data.MAINTENANCE_WAIT_MS)
        _timed(timings, "lock_wait", start)
        if not locked:
            continue
        locked_at = time.monotonic()
        if catalog.signature(conn, relations) != planned_on:
            # Someone changed the schema between planning and locking: plan again, under the lock.
            plan = build_online_plan(reader, request, user, allow_rewrite=allow_rewrite)
            if set(plan.offline.lock_relations) - set(relations):
                conn.rollback()
                lock_attempts.append({"attempt": attempt + 1, "replanned": True})
                continue
        _timed(timings, "swap_replan", locked_at)
        unfinished = [f"{t.relation}: {step}" for t in plan.tables for step, ok in t.expand_done().items() if not ok]
        if plan.refusals or unfinished:
            conn.rollback()
            raise ConversionError("refused at the swap, nothing swapped: "
                                  + "; ".join(plan.refusals + [f"expand unfinished on {u}" for u in unfinished]),
                                  {"refusals": plan.refusals, "executed_sql": executed})
        break
    else:
        raise ConversionError("the schema kept changing while we planned the swap; try again later",
                              {"lock_attempts": lock_attempts})
    say(f"swap: {len(plan.swap_sql)} statements under the lock")
    statement = None
    try:
        start = time.monotonic()
        before = capture(reader, plan.offline, count_rows=False)
        # Not back inside the swap by design: the proof check (gone for good), indexes built after it.
        after_swap = {ix["name"] for t in plan.tables for ix in t.later_indexes}
        before["dependents"] = {d for d in before["dependents"]
                                if d[1] != sql.PROOF_CHECK and not (d[0] == "index" and d[1] in after_swap)}
        prebuilt = {ix["name"]: ix["definition"] for t in plan.tables for ix in t.shadow_indexes}
        # A few statements per round trip: under the lock, a busy client's round trips are
        # what grows (520 one by one took 1 s of a 1.4 s lock at load average 9).
        for start_at in range(0, len(plan.swap_sql), SWAP_STATEMENTS_PER_ROUND_TRIP):
            chunk = plan.swap_sql[start_at:start_at + SWAP_STATEMENTS_PER_ROUND_TRIP]
            statement = ";\n".join(chunk)
            with conn.cursor() as cur:
                cur.execute(statement)
            executed += chunk
        statement = None
        _timed(timings, "swap_statements", start)
        start = time.monotonic()
        recorded = pending.record(conn, plan.contract_steps)
        differences = validate(reader, plan.offline, before)
        built = reader.index_definitions(list(prebuilt))
        differences += [f"index {name} is {built.get(name)!r} after the swap, was {definition!r}"
                        for name, definition in prebuilt.items() if built.get(name) != definition]
        if differences:
            conn.rollback()
            raise ConversionError("validation failed, the swap rolled back (the expand stays): "
                                  + "; ".join(differences), {"differences": differences, "executed_sql": executed})
        _timed(timings, "swap_validate", start)
        conn.commit()
    except ConversionError:
        raise
    except Exception as exc:
        with suppress(Exception):
            conn.rollback()
        raise ConversionError(f"the swap rolled back after an error (the expand stays): {str(exc).strip()}"
                              + (f"; in these statements: {statement}" if statement else ""),
                              {"executed_sql": executed, "failed_statement": statement}) from None
    timings["exclusive_lock"] = round(time.monotonic() - locked_at, 3)
    timings["swap"] = timings["exclusive_lock"]
    say(f"swap committed after {timings['exclusive_lock']} s under the exclusive lock; contract")
    start = time.monotonic()
    kept = {ix["name"] for ix in kept_indexes(plan.offline, plan.tables)}
    later = [ix for ix in plan.offline.deferred_indexes if ix["name"] not in kept]
    later += [ix for t in plan.tables for ix in t.later_indexes if not ix["rewritten"]]
    done, errors = run_recorded(conn, recorded, later, options, memory_setting(options, plan.offline), say)
    executed += done
    try:
        result["fk_count_after"] = len(reader.foreign_keys())
    except Exception as exc:  # committed already: report, never claim a rollback
        errors.append(f"counting foreign keys after the swap: {str(exc).strip()}")
        result["fk_count_after"] = None
    with suppress(Exception):
        conn.rollback()
    _timed(timings, "contract", start)
    timings["post_commit"] = timings["contract"]
    return result | {"changed": True, "plan": plan, "post_commit_errors": result["post_commit_errors"] + errors}


def abort_online(conn, options, schemas: list[str], say) -> dict:
    """Remove what an online expand added (before its swap): sync triggers,
    proof checks, shadow indexes, shadow columns, sync functions."""
    with one_run_at_a_time(conn):
        found = catalog.shadow_leftovers(conn, schemas)
        conn.rollback()
        executed = []
        try:
            for item in found:
                executed += _remove(conn, item, options, say)
        except data.ExpandError as exc:
            raise ConversionError(f"abort stopped (run it again to finish): {exc}",
                                  {"executed_sql": executed}) from None
    return {"changed": bool(executed), "executed_sql": executed, "removed": found}


def _remove(conn, item: dict, options, say) -> list[str]:
    if "function" in item:
        statements = [f"DROP FUNCTION IF EXISTS {item['function']}"]
        data.run_steps(conn, statements, options, what=f"dropping {item['function']}")
        return statements
    rel = item["relation"]
    executed = [sql.drop_sync_trigger(rel), sql.drop_proof_check(rel)]
    data.run_steps(conn, executed, options, what=f"removing the sync trigger and check of {rel}", fence=rel)
    dropped = [f"DROP INDEX CONCURRENTLY IF EXISTS {index}" for index in item["indexes"]]
    data.run_outside_a_transaction(conn, dropped)
    executed += dropped
    if item["columns"]:
        statement = f"ALTER TABLE {rel} " + ", ".join(f"DROP COLUMN IF EXISTS {ident(c)}" for c in item["columns"])
        data.run_steps(conn, [statement], options, what=f"dropping the shadow columns of {rel}", fence=rel)
        executed.append(statement)
    say(f"aborted the online expand on {rel}")
    return executed
