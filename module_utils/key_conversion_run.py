"""Execute a key-type conversion in one transaction, all or nothing.

LOCK every affected relation up front in a fixed order (one statement, so all
or none), with lock_timeout and bounded retries that name who blocks us; plan
again under the lock; drop dependents and FKs; one ALTER TABLE per table;
recreate everything; validate inside the transaction; COMMIT only when every
check holds, otherwise ROLLBACK and say what differed.
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from ansible.module_utils import key_conversion_after_commit_list as pending
from ansible.module_utils.key_conversion_after_commit import invalid_builds, run_after_commit
from ansible.module_utils.key_conversion_plan import ConversionRequest, build_plan
from ansible.module_utils.key_conversion_validate import UUID_DEFAULT  # noqa: F401 -- its home was here
from ansible.module_utils.key_conversion_validate import capture as _capture
from ansible.module_utils.key_conversion_validate import rows_and_values as _rows_and_values  # noqa: F401
from ansible.module_utils.key_conversion_validate import validate as _validate
from ansible.module_utils.pg_catalog import CatalogReader

LOCK_NOT_AVAILABLE = "55P03"
DEADLOCK_DETECTED = "40P01"
# Taking the locks failed and nothing changed, and another attempt can succeed: lock_timeout
# ran out, or the server broke a deadlock with the app's own transactions by ending ours.
RETRYABLE_LOCK_FAILURES = frozenset({LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED})
QUERY_CANCELED = "57014"  # statement_timeout: retryable where it bounds the LOCK statement alone


class ConversionError(Exception):
    """Nothing was committed; ``details`` says why."""

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.details = details or {}


@dataclass
class RunOptions:
    lock_timeout_ms: int = 5000
    lock_retries: int = 5
    retry_base_seconds: float = 1.0
    statement_timeout_ms: int = 0
    maintenance_work_mem: str = "auto"  # auto: sized from the largest index rebuilt
    sleep: object = time.sleep
    progress: object = None  # callable(str) or None
    # After COMMIT, VALIDATE and ANALYZE run on this many connections at once
    # (more from connect(), a zero-argument callable; None: the one connection).
    connect: object = None
    after_commit_workers: int = 2
    timings: dict = field(default_factory=dict)


def _sqlstate(exc) -> str | None:
    return getattr(exc, "pgcode", None)


def _phases(timings: dict):
    """phase(name) is a context manager adding its seconds to timings[name]."""
    @contextmanager
    def phase(name: str):
        start = time.monotonic()
        try:
            yield
        finally:
            timings[name] = round(timings.get(name, 0) + time.monotonic() - start, 3)
    return phase


def plan_only(conn, request: ConversionRequest) -> dict:
    """Check mode: the plan from the catalog, in a read-only transaction."""
    conn.rollback()
    conn.set_session(readonly=True)
    try:
        reader = CatalogReader(conn)
        plan = build_plan(reader, request, reader.database_info()["user"])
        return {"plan": plan, "fk_count": len(reader.foreign_keys())}
    finally:
        conn.rollback()
        conn.set_session(readonly=False)


@contextmanager
def one_run_at_a_time(conn):
    """Hold the conversion's advisory lock for the block: one run per database
    at a time, whatever its mode. ConversionError when another run holds it."""
    conn.rollback()
    busy = pending.try_lock(conn)
    if busy:
        conn.rollback()
        raise ConversionError(f"{busy}; nothing changed")
    try:
        conn.rollback()
        yield
    finally:
        # Quietly: on a lost connection the server has rolled back and released
        # the lock, and the error that matters is the one already raised.
        _rollback_quietly(conn)
        pending.unlock(conn)
        _rollback_quietly(conn)


def convert(conn, request: ConversionRequest, options: RunOptions) -> dict:
    """Run the conversion; returns what was done. Raises ConversionError having
    rolled back when refused, when locks cannot be had, or when a check fails.
    One run per database at a time (an advisory lock for the whole run)."""
    with one_run_at_a_time(conn):
        return _convert(conn, request, options)


def finish_leftover(conn, options: RunOptions, say) -> tuple[list[str], list[str]]:
    """Steps an earlier run committed to doing after its COMMIT and did not
    finish (it died, or a step failed): run them now; (executed, errors)."""
    try:
        entries = pending.read(conn)
    except pending.PendingListError as exc:
        say(f"not running the list of work after commit: {exc}")  # the plan refuses what needs it
        entries = []
    finally:
        conn.rollback()
    if not entries:
        return [], []
    say(f"finishing {len(entries)} steps an earlier run left for after its commit")
    # auto sizes from a plan's largest index; a list left by a dead run has no plan: a moderate fixed size.
    memory = options.maintenance_work_mem if options.maintenance_work_mem != "auto" else "256MB"
    return run_recorded(conn, entries, [], options, memory, say)


def run_recorded(conn, entries, deferred_indexes, options: RunOptions, memory: str,
                  say) -> tuple[list[str], list[str]]:
    """Run recorded after-commit steps, each deleting its row when done; then
    check the deferred indexes against their captured definitions and drop
    the list once it is empty; (executed, errors)."""
    steps = [(relation, statement) for _, relation, statement in entries]
    done, errors = run_after_commit(
        conn, steps, memory=memory,
        say=say, connect=options.connect, workers=_workers(options),
        on_done=lambda connection, number: pending.mark_done(connection, entries[number][0]),
        on_connect=pending.hold_worker_lock)
    try:
        conn.autocommit = False
        # In a transaction: definitions print qualified only under its empty search_path.
        built = CatalogReader(conn).index_definitions([ix["name"] for ix in deferred_indexes])
        conn.rollback()
        # Missing or invalid, whoever planned the build; differing, where this run captured it.
        errors += invalid_builds(conn, steps)
        conn.rollback()
        errors += [f"index {ix['name']} differs after its build: {built[ix['name']]!r}, was {ix['definition']!r}"
                   for ix in deferred_indexes if built.get(ix["name"], ix["definition"]) != ix["definition"]]
        conn.autocommit = True
        if not pending.remove_if_empty(conn):
            errors.append(f"steps remain in {pending.TABLE}; a re-run finishes them")
    except Exception as exc:  # committed already: report, never claim a rollback
        errors.append(f"checking the work after commit: {str(exc).strip()}")
    finally:
        _rollback_quietly(conn)
        with suppress(Exception):  # a lost connection: the errors above say so
            conn.autocommit = False
    return done, errors


def _convert(conn, request: ConversionRequest, options: RunOptions) -> dict:
    say = options.progress or (lambda message: None)
    conn.rollback()
    conn.autocommit = False
    with _phases(options.timings)("earlier_run"):
        leftover_done, leftover_errors = finish_leftover(conn, options, say)
    try:
        return _convert_now(conn, request, options, say, leftover_done, leftover_errors)
    except ConversionError as exc:
        if leftover_done:  # that work was committed by the earlier run: never claim it undone
            exc.args = (f"{exc} (before that, {len(leftover_done)} statements an earlier run left for after "
                        "its commit were run; see earlier_run_sql)",)
            exc.details["earlier_run_sql"] = leftover_done
        raise


def _convert_now(conn, request: ConversionRequest, options: RunOptions, say, leftover_done: list[str],
                 leftover_errors: list[str]) -> dict:
    timings = options.timings
    phase = _phases(timings)
    reader = CatalogReader(conn)
    lock_attempts = []
    plan = None

    for attempt in range(options.lock_retries + 1):
        with phase("plan"):
            conn.rollback()
            user = reader.database_info()["user"]
            outline = build_plan(reader, request, user)
            if outline.refusals:
                conn.rollback()
                raise ConversionError("refused before any change: " + "; ".join(outline.refusals),
                                      {"refusals": outline.refusals, "plan": outline.summary()})
            if not outline.needed:
                fk_count = len(reader.foreign_keys())
                conn.rollback()
                timings.setdefault("exclusive_lock", 0.0)  # no lock was taken
                return {"changed": bool(leftover_done or leftover_errors), "plan": outline,
                        "fk_count_before": fk_count, "fk_count_after": fk_count, "timings": timings,
                        "lock_attempts": lock_attempts, "executed_sql": leftover_done,
                        "post_commit_errors": leftover_errors}
            if leftover_errors:
                raise ConversionError("an earlier run's work after its commit is still unfinished, nothing "
                                      "new was started: " + "; ".join(leftover_errors),
                                      {"post_commit_errors": leftover_errors, "executed_sql": leftover_done})
            conn.rollback()
        with phase("lock_wait"):
            say(f"locking {len(outline.lock_relations)} relations (attempt {attempt + 1})")
            if not take_locks(conn, reader, outline.lock_relations, options, attempt, lock_attempts,
                              memory_setting(options, outline)):
                continue
        locked_at = time.monotonic()
        with phase("plan"):
            plan = build_plan(reader, request, user)
        if plan.refusals:
            # Found only now that we hold the locks: refuse by name, as before any change.
            conn.rollback()
            raise ConversionError("refused before any change: " + "; ".join(plan.refusals),
                                  {"refusals": plan.refusals, "plan": plan.summary(),
                                   "lock_attempts": lock_attempts})
        if set(plan.lock_relations) - set(outline.lock_relations):
            # The schema changed between planning and locking: plan again.
            conn.rollback()
            lock_attempts.append({"attempt": attempt + 1, "replanned": True})
            continue
        break
    else:
        raise ConversionError("the schema kept changing while we planned; try again later",
                              {"lock_attempts": lock_attempts})

    executed = []

    def run(statement):
        _execute(conn, statement)
        executed.append(statement)

    statement = None
    try:
        with phase("capture"):
            before = _capture(reader, plan)
        with phase("drop"):
            for statement in plan.drop_sql:
                run(statement)
        with phase("alter"):
            for number, (relation, statement) in enumerate(plan.alter_sql, 1):
                say(f"rewriting {number}/{len(plan.alter_sql)}: {relation}")
                _set_application_name(conn, f"key conversion {number}/{len(plan.alter_sql)} {relation}")
                run(statement)
            for statement in plan.check_cleanup_sql:
                run(statement)
        with phase("recreate"):
            say(f"recreating {len(plan.foreign_keys)} foreign keys and "
                f"{len(plan.views) + len(plan.policies) + len(plan.triggers) + len(plan.rules)} objects")
            for statement in plan.create_sql:
                run(statement)
            recorded = pending.record(conn, plan.post_commit_steps) if plan.records_pending else []
            if recorded:
                executed.append(f"-- {len(recorded)} steps for after the commit recorded in {pending.TABLE}")
        statement = None
        with phase("validate"):
            say("validating inside the transaction")
            differences = _validate(reader, plan, before)
        if differences:
            conn.rollback()
            raise ConversionError("validation failed, rolled back: " + "; ".join(differences),
                                  {"differences": differences, "executed_sql": executed})
        with phase("commit"):
            conn.commit()
    except ConversionError:
        raise
    except Exception as exc:
        _rollback_quietly(conn)
        raise ConversionError(f"rolled back after an error: {str(exc).strip()}"
                              + (f"; the statement was: {statement}" if statement else ""),
                              {"executed_sql": executed, "failed_statement": statement}) from None
    timings["exclusive_lock"] = round(time.monotonic() - locked_at, 3)

    with phase("post_commit"):
        if recorded:
            done, post_errors = run_recorded(conn, recorded, plan.deferred_indexes, options,
                                              memory_setting(options, plan), say)
        else:
            done, post_errors = run_after_commit(conn, plan.post_commit_steps, memory=memory_setting(options, plan),
                                                 say=say, connect=options.connect, workers=_workers(options))
        executed = leftover_done + executed + done
        try:
            fk_count_after = len(reader.foreign_keys())
        except Exception as exc:  # committed already: report, never claim a rollback
            post_errors.append(f"counting foreign keys after commit: {str(exc).strip()}")
            fk_count_after = None
        _rollback_quietly(conn)
        with suppress(Exception):  # a lost connection: its steps failed above and stay recorded
            conn.autocommit = False
    return {"changed": True, "plan": plan, "fk_count_before": before["fk_total"],
            "fk_count_after": fk_count_after, "timings": timings,
            "lock_attempts": lock_attempts, "executed_sql": executed,
            "post_commit_errors": leftover_errors + post_errors,
            "row_counts": before["counts"]}


def take_locks(conn, reader, relations: list[str], options: RunOptions, attempt: int, lock_attempts: list,
               memory: str, *, total_ms: int | None = None, fence_ms: int | None = None) -> bool:
    """LOCK every relation IN ACCESS EXCLUSIVE MODE in one statement (all or
    none) with the run's lock_timeout, in the caller's transaction. True when
    held; False when the caller should try again (after the backoff slept here,
    the blocking sessions recorded in lock_attempts); ConversionError when not.
    ``total_ms`` also bounds the whole statement (lock_timeout bounds each
    relation's wait: the tables locked first stay locked while a later one waits).
    ``fence_ms``: first SHARE UPDATE EXCLUSIVE on them all, waiting up to that
    long per relation (see maintenance_fence)."""
    _execute(conn, "SELECT set_config('statement_timeout', %s, true), set_config('maintenance_work_mem', %s, true)",
             (f"{options.statement_timeout_ms}ms", memory))
    retryable = RETRYABLE_LOCK_FAILURES | ({QUERY_CANCELED} if total_ms else set())
    try:
        if fence_ms:
            maintenance_fence(conn, relations, fence_ms)
        _execute(conn, "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
                 (f"{options.lock_timeout_ms}ms", f"{total_ms or options.statement_timeout_ms}ms"))
        _execute(conn, "LOCK TABLE " + ", ".join(relations) + " IN ACCESS EXCLUSIVE MODE")
        if total_ms:
            _execute(conn, "SELECT set_config('statement_timeout', %s, true)", (f"{options.statement_timeout_ms}ms",))
        return True
    except Exception as exc:
        if _sqlstate(exc) not in retryable:
            # A statement timeout, a privilege missing on a view: nothing has
            # changed yet, and retrying would not help.
            _rollback_quietly(conn)
            raise ConversionError(f"could not lock the {len(relations)} relations, "
                                  f"nothing changed: {str(exc).strip()}",
                                  {"lock_attempts": lock_attempts}) from None
    conn.rollback()
    holders = reader.lock_holders(relations)
    conn.rollback()
    lock_attempts.append({"attempt": attempt + 1, "blocked_by": holders})
    if attempt == options.lock_retries:
        raise ConversionError(
            f"could not lock {len(relations)} relations within "
            f"{options.lock_timeout_ms} ms after {attempt + 1} attempts; blocking sessions: "
            + "; ".join(f"pid {h['pid']} ({h['user']}, {h['state']}) holds {h['mode']} on "
                        f"{h['relation']}: {h['query']}" for h in holders),
            {"lock_attempts": lock_attempts})
    delay = options.retry_base_seconds * 2 ** attempt
    options.sleep(delay + random.uniform(0, delay))  # noqa: S311 -- jitter, not crypto
    return False


def maintenance_fence(conn, relations: list[str], wait_ms: int) -> None:
    """SHARE UPDATE EXCLUSIVE on ``relations`` in the caller's transaction,
    waiting up to ``wait_ms`` per relation, before a step whose own lock must be
    short. That lock blocks no read or write of the app, only VACUUM, ANALYZE,
    index builds and DDL, so waiting for it is harmless; and an autovacuum in the
    way is cancelled by the server once a lock request has waited
    deadlock_timeout, which a short lock timeout never reaches. (After a
    backfill every table is due for one: without this fence the swap could
    never lock a table autovacuum is working on.) Held, it keeps a new
    autovacuum off those tables until the transaction ends."""
    _execute(conn, "SELECT set_config('lock_timeout', %s, true)", (f"{wait_ms}ms",))
    _execute(conn, "LOCK TABLE " + ", ".join(relations) + " IN SHARE UPDATE EXCLUSIVE MODE")


def _rollback_quietly(conn) -> None:
    """Roll back; a dead connection has rolled back already (the server aborts
    an unfinished transaction when its backend goes away)."""
    with suppress(Exception):  # nothing more to undo on a lost connection
        conn.rollback()


def _execute(conn, statement, params=None):
    with conn.cursor() as cur:
        cur.execute(statement, params)


def memory_setting(options: RunOptions, plan) -> str:
    return plan.maintenance_work_mem if options.maintenance_work_mem == "auto" else options.maintenance_work_mem


def _workers(options: RunOptions) -> int:
    """Connections for the work after COMMIT: more only where connect() can open them."""
    return options.after_commit_workers if options.connect else 1


def _set_application_name(conn, name: str) -> None:
    # Shows progress in pg_stat_activity to anyone watching the server.
    _execute(conn, "SELECT set_config('application_name', %s, true)", (name[:63],))
