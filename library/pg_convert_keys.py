#!/usr/bin/python
"""Convert key columns and every FK-linked column in one transaction; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_convert_keys
short_description: Change the type of key columns and every column linked to them by foreign keys, all or nothing
description:
  - Discovers from the catalog the closure of columns linked by foreign keys to the target keys (any schema;
    composite FKs, multi-column unique keys, self-references, cycles, partitioned tables), captures every FK
    exactly (C(pg_get_constraintdef) with an empty search_path) and every object that blocks or depends on the
    columns (views and materialized views with their dependents, owners, grants, comments, indexes and populated
    state; RLS policies; triggers; rules; stored generated columns, dropped and added back in the table's one
    rewrite with their NOT NULL, indexes, constraints, grants, comment and statistics target, as its last
    column). Columns of a domain over O(source_type) convert like it (the domain's NOT NULL and default move
    onto the column; the plan names the domain, kept, and its checks). From uuid, every use of a converted
    column in a view, policy, trigger WHEN, rule, check or index expression is read from the stored parse tree;
    uuid constants compared by equality with it are retyped (before/after shown in the plan and --diff); any
    use not provably the same over the new type is refused by name. Also refused before any change are
    publications, SQL-standard function bodies, constraint triggers, policies that would no longer type-check,
    tables owned by another role, text values that are not UUIDs.
  - In one transaction it takes every lock up front in a fixed order (with C(lock_timeout) and bounded retries
    with backoff and jitter that name the blocking sessions), plans again under the lock, drops dependents and
    FKs, runs ONE C(ALTER TABLE) per table with all of its column changes (one rewrite per table), recreates
    everything, then validates inside the transaction (FK set and count equal to the captured one, every column
    of the target type, row counts unchanged, every value in UUID text format, dependents, grants and defaults
    back) and commits only if all hold; otherwise it rolls back and reports what differed.
  - Runs as a non-superuser owner of the tables; uses no C(session_replication_role) and writes no catalog.
  - An already converted database gives C(changed=false) and executes no DDL; a half-converted one converges.
options:
  progress_file:
    description: A file on the managed host to append progress lines to (which table, n of m), for C(tail -f).
    type: path
  run_timeout:
    description:
      - Seconds the whole run may take (0 for no limit). Past it the running statement is cancelled, so
        before COMMIT everything rolls back; after COMMIT the unfinished steps stay recorded for the next run.
      - Run this module synchronously (not async), so that it ends with the ansible-playbook that started
        it. Its sessions set C(client_connection_check_interval), so the server rolls back as soon as a killed
        run's connection closes, in the middle of a statement too.
    type: int
    default: 0
  mode:
    description:
      - C(offline) converts in one transaction holding ACCESS EXCLUSIVE locks for about one rewrite of the tables
        (the app in maintenance mode).
      - C(online) expands while the app runs (shadow columns of the target type kept equal by a trigger, backfilled
        in batches, their indexes built concurrently, a validated check proving them equal), then swaps in one short
        transaction whose statements read no table, then validates FKs and checks and analyzes after it. A table
        that cannot be done online is refused by name (see I(online_allow_rewrite)). See docs/convert_keys.md.
    type: str
    choices: [offline, online]
    default: offline
  online_batch_rows:
    description: Rows per backfill batch (each its own short transaction), in online mode.
    type: int
    default: 5000
  online_batch_pause:
    description: Seconds to pause between backfill batches, in online mode (gives the app's writes room).
    type: float
    default: 0
  online_workers:
    description:
      - Connections the online expand works on, one table each at a time (backfill, index builds). Each is one
        more session beside the app's; more than the server's cores still helps, as each waits on its commits and
        index builds part of the time.
    type: int
    default: 4
  online_lock_timeout:
    description:
      - In online mode, milliseconds each brief lock (adding the shadows, the swap's exclusive locks) may wait, in
        place of I(lock_timeout); retried I(lock_retries) times with backoff. While such a request waits, the app's
        queries on that table queue behind it, so it is short.
    type: int
    default: 1000
  online_allow_rewrite:
    description: In online mode, rewrite a table that cannot be done online inside the swap, as offline (the plan
      names it and its size, which the exclusive lock then grows with), instead of refusing.
    type: bool
    default: false
  online_abort:
    description: Remove what an unfinished online expand added (shadow columns, sync triggers and functions, proof
      checks, shadow indexes) instead of converting. Needs I(mode=online). After a swap there is nothing to remove.
    type: bool
    default: false
extends_documentation_fragment: [postgres_connection, key_conversion]
attributes:
  check_mode:
    support: full
    description: Returns the plan from the catalog alone (online, its expand, swap and contract phases); no DDL is
      executed, not even in a rolled-back transaction.
  diff_mode:
    support: full
    description: Column types before and after, and the text of each dependent whose uuid constants are retyped.
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Plan the conversion (check mode shows the SQL)
  pg_convert_keys:
    database_url: "{{ recovery_database_url }}"
  check_mode: true
  no_log: true
  register: plan

- name: Convert every uuid key and everything linked to it
  pg_convert_keys:
    database_url: "{{ recovery_database_url }}"
    scope: all
    lock_timeout: 3000
  no_log: true

- name: Convert with everything inside the transaction (a longer lock window, no work after COMMIT)
  pg_convert_keys:
    database_url: "{{ recovery_database_url }}"
    fk_validation: in_transaction
    index_build: in_transaction
    value_check: round_trip
  no_log: true
"""

RETURN = r"""
error:
  description:
    - Why the module refused or failed (the same text as C(msg)); never holds a secret. A role runs this no_log
      task with C(failed_when) false and fails with this reason in the next task, so the operator reads it.
  returned: on failure
  type: str
plan:
  description: Columns, tables (with sizes), FKs, views, policies, triggers, rules, refusals, unconverted columns,
    lock order, the ordered SQL, the statements for after commit (post_commit_sql), the secondary indexes built
    after commit (deferred_indexes), steps an earlier run left unfinished (pending_after_commit), generated
    columns dropped and added back (generated_columns), dependents whose uuid constants are retyped with their
    text before and after (rewritten), functions and triggers naming a converted table and a column left
    unconverted (unconverted_writers), notes, and the estimated seconds.
  returned: always
  type: dict
fk_count_before:
  description: FKs in the database (pg_constraint, contype f) before.
  returned: always
  type: int
fk_count_after:
  description: The same count after.
  returned: always
  type: int
columns_converted:
  description: Qualified columns whose type changed.
  returned: always
  type: list
tables_rewritten:
  description: Tables rewritten, one ALTER TABLE each.
  returned: always
  type: list
objects_recreated:
  description: Counts of FKs, views, policies, triggers and rules dropped and recreated.
  returned: always
  type: dict
timings:
  description: Seconds per phase (earlier_run, finishing what an earlier run left; plan, lock_wait, capture,
    drop, alter, recreate, validate, commit, post_commit) and exclusive_lock, the time the ACCESS EXCLUSIVE
    locks were held.
  returned: when changed
  type: dict
executed_sql:
  description: Every statement executed, in order.
  returned: always
  type: list
lock_attempts:
  description: Lock timeouts met, each with the sessions that blocked.
  returned: always
  type: list
mode:
  description: offline or online, as run.
  returned: when changed
  type: str
backfill:
  description: Online mode, per table backfilled by this run, rows written, batches and seconds.
  returned: when changed
  type: dict
"""

import datetime
import os

from ansible.module_utils.key_conversion_after_commit_list import wait_for_other_run
from ansible.module_utils.key_conversion_converted import of_target_type
from ansible.module_utils.key_conversion_lifetime import Deadline, end_with_controller, watched_connect
from ansible.module_utils.key_conversion_online_catalog import shadow_leftovers
from ansible.module_utils.key_conversion_online_run import abort_online, convert_online, plan_online
from ansible.module_utils.key_conversion_options import (
    conversion_argument_spec,
    request_from_params,
    run_options_from_params,
)
from ansible.module_utils.key_conversion_run import ConversionError, convert, plan_only
from ansible.module_utils.module_refusal import RefusingModule, refuse
from ansible.module_utils.pg_catalog import CatalogReader
from ansible.module_utils.pg_connection import (
    ConnectionFailure,
    connection_argument_spec,
    ensure_psycopg2,
)

try:
    from psycopg2 import DatabaseError
    from psycopg2 import Error as DriverError  # DatabaseError and InterfaceError (a closed connection)
except ImportError:  # ensure_psycopg2() reports it
    DatabaseError = DriverError = ConnectionFailure


def _progress_writer(path):
    if not path:
        return None

    def write(message):
        stamp = datetime.datetime.now(datetime.UTC).strftime("%H:%M:%S")
        # 0600 like every report: progress names tables, never secrets, but stays private.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {message}\n")
    return write


def _result(module, plan, **extra):
    summary = plan.summary()
    for note in plan.notes:
        module.warn(note)
    counts = {"foreign_keys": len(plan.foreign_keys), "views": len(plan.views),
              "policies": len(plan.policies), "triggers": len(plan.triggers), "rules": len(plan.rules)}
    rewritten = getattr(plan, "rewritten_tables", None)  # online: only those rewritten inside the swap
    return {"plan": summary, "columns_converted": summary["columns"],
            "tables_rewritten": [t["relation"] for t in (summary["tables"] if rewritten is None else rewritten)],
            "objects_recreated": counts, **extra}


def _diff(plan):
    """Column types, then each dependent whose text has uuid constants retyped."""
    before = "".join(f"{c['qualified']}: {c['type']}\n" for c in plan.columns)
    after = "".join(f"{c['qualified']}: {c['new_type']}\n" for c in plan.columns)
    for rewrite in plan.rewritten:
        before += f"{rewrite['object']}:\n{rewrite['before']}\n"
        after += f"{rewrite['object']}:\n{rewrite['after']}\n"
    return {"before": before, "after": after}


def _abort(module, conn, p, progress):
    """online_abort: remove an unfinished online expand (check mode: list it)."""
    if module.check_mode:
        try:
            found = shadow_leftovers(conn, p["schemas"])
            conn.rollback()
        except DriverError as exc:
            refuse(module, f"reading the catalog failed, nothing changed: {str(exc).strip()}")
        module.exit_json(changed=bool(found), removed=found, executed_sql=[], mode="online", aborted=True)
    options = run_options_from_params(p, progress=progress)
    options.lock_timeout_ms = p["online_lock_timeout"]
    try:
        outcome = abort_online(conn, options, p["schemas"], progress or (lambda message: None))
    except ConversionError as exc:
        refuse(module, str(exc), **exc.details)
    except DriverError as exc:
        refuse(module, f"abort failed: {str(exc).strip()}; run it again to finish")
    module.exit_json(**outcome, mode="online", aborted=True)


def main():
    argument_spec = connection_argument_spec() | conversion_argument_spec() | {
        "progress_file": {"type": "path"},
        "run_timeout": {"type": "int", "default": 0},
        "mode": {"type": "str", "choices": ["offline", "online"], "default": "offline"},
        "online_batch_rows": {"type": "int", "default": 5000},
        "online_batch_pause": {"type": "float", "default": 0},
        "online_workers": {"type": "int", "default": 4},
        "online_allow_rewrite": {"type": "bool", "default": False},
        "online_lock_timeout": {"type": "int", "default": 1000},
        "online_abort": {"type": "bool", "default": False},
    }
    module = RefusingModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_psycopg2(module)
    p = module.params
    try:
        request = request_from_params(p)
        if p["online_abort"] and p["mode"] != "online":
            raise ValueError("online_abort removes an online expand: it needs mode online")
        if (p["online_batch_rows"] < 1 or p["online_batch_pause"] < 0 or p["online_lock_timeout"] <= 0
                or p["online_workers"] < 1):
            raise ValueError("online_batch_rows must be >= 1, online_batch_pause >= 0, online_lock_timeout > 0 "
                             "and online_workers >= 1")
    except ValueError as exc:
        refuse(module, str(exc))

    progress = _progress_writer(p["progress_file"])
    end_with_controller(progress)  # a killed ansible-playbook ends this run too
    try:
        conn = watched_connect(p)
    except ConnectionFailure as exc:
        refuse(module, str(exc))
    try:
        try:
            busy = wait_for_other_run(conn)  # a killed run's session ends within seconds
        except DriverError as exc:  # e.g. this session terminated while it looked
            refuse(module, f"checking for another conversion run failed, nothing changed: {str(exc).strip()}")
        if busy:
            refuse(module, f"{busy}; nothing changed, run again once it has ended")
        online = p["mode"] == "online"
        if p["online_abort"]:
            _abort(module, conn, p, progress)
        if module.check_mode:
            try:
                planned = (plan_online(conn, request, allow_rewrite=p["online_allow_rewrite"]) if online
                           else plan_only(conn, request))
                converted = of_target_type(CatalogReader(conn), request)  # counted for "already converted"
                conn.rollback()
            except ValueError as exc:
                refuse(module, str(exc))
            except DriverError as exc:
                refuse(module, f"planning failed, nothing changed: {str(exc).strip()}")
            plan = planned["plan"]
            result = _result(module, plan, changed=plan.needed or bool(plan.pending_after_commit),
                             fk_count_before=planned["fk_count"],
                             fk_count_after=planned["fk_count"], executed_sql=[], lock_attempts=[])
            result["plan"]["already_converted"] = sorted(set(result["plan"]["already_converted"]) | set(converted))
            if plan.refusals:
                refuse(module, "refused before any change: " + "; ".join(plan.refusals), **result)
            if module._diff and plan.needed:
                result["diff"] = _diff(plan)
            module.exit_json(**result)

        options = run_options_from_params(p, connect=lambda: watched_connect(p), progress=progress)
        if online:
            options.lock_timeout_ms = p["online_lock_timeout"]
        deadline = Deadline(conn, p["run_timeout"])
        try:
            outcome = (convert_online(conn, request, options, batch_rows=p["online_batch_rows"],
                                      pause_seconds=p["online_batch_pause"],
                                      allow_rewrite=p["online_allow_rewrite"], workers=p["online_workers"]) if online
                       else convert(conn, request, options))
        except ConversionError as exc:
            late = f"not done within run_timeout ({p['run_timeout']} s), cancelled: " if deadline.expired else ""
            refuse(module, late + str(exc), **exc.details)
        except ValueError as exc:
            refuse(module, str(exc))
        except DatabaseError as exc:  # raised while planning, before any change
            refuse(module, f"planning failed, nothing changed: {str(exc).strip()}")
        finally:
            deadline.stop()
        plan = outcome["plan"]
        result = _result(module, plan, changed=outcome["changed"], fk_count_before=outcome["fk_count_before"],
                         fk_count_after=outcome["fk_count_after"], timings=outcome["timings"],
                         executed_sql=outcome["executed_sql"], lock_attempts=outcome["lock_attempts"],
                         post_commit_errors=outcome.get("post_commit_errors", []),
                         row_counts=outcome.get("row_counts", {}), mode=p["mode"],
                         backfill=outcome.get("backfill", {}))
        if not outcome["changed"]:
            result.update(columns_converted=[], tables_rewritten=[],
                          objects_recreated=dict.fromkeys(result["objects_recreated"], 0))
        elif module._diff:
            result["diff"] = _diff(plan)
        if result["post_commit_errors"]:
            done = ("converted and committed, but after commit: " if plan.needed
                    else "nothing left to convert, but the work an earlier run left for after its commit "
                         "is unfinished: ")
            refuse(module, done + "; ".join(result["post_commit_errors"]), **result)
        module.exit_json(**result)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
