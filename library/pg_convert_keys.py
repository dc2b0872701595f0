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
    state; RLS policies; triggers; rules), and refuses by name, before any change, what it cannot recreate safely
    (generated columns, publications, SQL-standard function bodies, constraint triggers, CHECKs with a
    source-type literal, policies that would no longer type-check, tables owned by another role, text values
    that are not UUIDs).
  - In one transaction it takes every lock up front in a fixed order (with C(lock_timeout) and bounded retries
    with backoff and jitter that name the blocking sessions), plans again under the lock, drops dependents and
    FKs, runs ONE C(ALTER TABLE) per table with all of its column changes (one rewrite per table), recreates
    everything, then validates inside the transaction (FK set and count equal to the captured one, every column
    of the target type, row counts unchanged, every value in UUID text format, dependents, grants and defaults
    back) and commits only if all hold; otherwise it rolls back and reports what differed.
  - Runs as a non-superuser owner of the tables; uses no C(session_replication_role) and writes no catalog.
  - An already converted database gives C(changed=false) and executes no DDL; a half-converted one converges.
options:
  keys:
    description:
      - Key columns as C(schema.table.column), or C([auto]) for every primary key of O(source_type) in O(schemas).
    type: list
    elements: str
    default: [auto]
  scope:
    description:
      - C(keys) converts the keys and every column linked to them by FKs. C(all) also converts every other
        column of O(source_type) in O(schemas) (the app's contract that none remains).
    type: str
    choices: [keys, all]
    default: keys
  source_type:
    description: The type being replaced, as SQL (C(uuid), C(varchar(36))).
    type: str
    default: uuid
  target_type:
    description: The new type, as SQL.
    type: str
    default: varchar(36)
  collation:
    description:
      - A collation for the converted columns, for example C(C). Under C(C) canonical UUID text sorts
        bytewise, exactly as C(uuid) did, and index builds run several times faster than under a linguistic
        collation such as C(en_US.UTF-8) (see bench/bench_convert.py). Omit to keep the database default,
        which is what a plain C(String(36)) model column gets.
    type: str
  schemas:
    description: Schemas searched for C(auto) keys and for O(scope=all); the FK closure crosses schemas regardless.
    type: list
    elements: str
    default: [public]
  include_columns:
    description: Extra columns (C(schema.table.column)) to convert with their FK closure.
    type: list
    elements: str
    default: []
  include_arrays:
    description: Also convert arrays of O(source_type) (to arrays of O(target_type)).
    type: bool
    default: false
  fk_validation:
    description:
      - C(in_transaction) re-adds FKs validated, inside the lock window. C(after_commit) re-adds them C(NOT VALID)
        (new rows are checked at once; old rows did not change) and runs C(VALIDATE CONSTRAINT) right after commit,
        shortening the exclusive-lock window. FKs on partitioned tables always validate inside (PostgreSQL forbids
        C(NOT VALID) there); FKs that were C(NOT VALID) stay so.
    type: str
    choices: [in_transaction, after_commit]
    default: in_transaction
  index_build:
    description:
      - C(in_transaction) lets the rewrite rebuild every index of a rewritten table inside the lock window.
        C(after_commit) drops the secondary indexes (not unique, backing no constraint, not the replica identity,
        not clustered, not on a partitioned table) inside the transaction and builds them again with
        C(CREATE INDEX CONCURRENTLY) right after commit, from their captured definitions and with their comments;
        the lock window then holds only the heap rewrite and the unique indexes.
      - With either C(after_commit) choice the work after commit is first recorded, inside the conversion
        transaction, in the table C(key_conversion.pending_steps); each step removes its row, the table and schema
        go when it is empty, and a later run finishes what a dead or failed run left (an invalid index left by an
        interrupted build is dropped and built again). This needs C(CREATE) on the database.
    type: str
    choices: [in_transaction, after_commit]
    default: in_transaction
  value_check:
    description:
      - From uuid, how each new value is checked while the rewrite writes it (a temporary CHECK, no scan of its
        own). C(round_trip) casts it back to uuid and compares (exact; about a third of the rewrite's time).
        C(shape) checks 36 bytes with the hyphens in place, and relies for the lower-case hex digits on uuid's
        built-in output function, which the plan confirms does the cast (no C(pg_cast) entry overrides it);
        where one does, it checks C(round_trip). To uuid, the cast itself refuses anything that is not a UUID.
    type: str
    choices: [round_trip, shape]
    default: round_trip
  lock_timeout:
    description: Milliseconds to wait for all locks in one attempt.
    type: int
    default: 5000
  lock_retries:
    description: Further attempts after a lock timeout (exponential backoff with jitter).
    type: int
    default: 5
  lock_retry_delay:
    description: Seconds before the first retry (doubling after each).
    type: float
    default: 1.0
  statement_timeout:
    description: Milliseconds any one statement may run inside the transaction; 0 is no limit.
    type: int
    default: 0
  maintenance_work_mem:
    description:
      - Session maintenance_work_mem for the index rebuilds of the rewrite; C(auto) sizes it from the largest
        index rebuilt (twice its size, 64 MB to 1 GB).
    type: str
    default: auto
  after_commit_workers:
    description:
      - Connections that run the work after COMMIT at once (index builds, VALIDATE of FKs re-added NOT VALID,
        ANALYZE of the changed columns), one table per connection at a time. None of it blocks the application.
    type: int
    default: 2
  progress_file:
    description: A file on the managed host to append progress lines to (which table, n of m), for C(tail -f).
    type: path
  rewrite_mb_per_second:
    description: Assumed rewrite throughput for the plan's time estimate.
    type: float
    default: 50.0
  run_timeout:
    description:
      - Seconds the whole run may take (0 for no limit). Past it the running statement is cancelled, so
        before COMMIT everything rolls back; after COMMIT the unfinished steps stay recorded for the next run.
      - Run this module synchronously (not async), so that it ends with the ansible-playbook that started
        it. Its sessions set C(client_connection_check_interval), so the server rolls back as soon as a killed
        run's connection closes, in the middle of a statement too.
    type: int
    default: 0
extends_documentation_fragment: [postgres_connection]
attributes:
  check_mode:
    support: full
    description: Returns the plan from the catalog alone; no DDL is executed, not even in a rolled-back transaction.
  diff_mode:
    support: full
    description: Column types before and after.
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
    fk_validation: after_commit
    index_build: after_commit
    lock_timeout: 3000
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
    after commit (deferred_indexes), steps an earlier run left unfinished (pending_after_commit) and the
    estimated seconds.
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
"""

import datetime
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.key_conversion_converted import of_target_type
from ansible.module_utils.key_conversion_lifetime import Deadline, end_with_controller, watched_connect
from ansible.module_utils.key_conversion_pending import wait_for_other_run
from ansible.module_utils.key_conversion_plan import (
    FK_VALIDATION,
    INDEX_BUILD,
    SCOPES,
    VALUE_CHECKS,
    ConversionRequest,
)
from ansible.module_utils.key_conversion_run import ConversionError, RunOptions, convert, plan_only
from ansible.module_utils.module_refusal import refuse
from ansible.module_utils.pg_catalog import CatalogReader
from ansible.module_utils.pg_connection import (
    ConnectionFailure,
    connection_argument_spec,
    ensure_psycopg2,
)

try:
    from psycopg2 import DatabaseError
except ImportError:  # ensure_psycopg2() reports it
    DatabaseError = ConnectionFailure


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
    return {"plan": summary, "columns_converted": summary["columns"],
            "tables_rewritten": [t["relation"] for t in summary["tables"]],
            "objects_recreated": counts, **extra}


def _diff(plan):
    return {
        "before": "".join(f"{c['qualified']}: {c['type']}\n" for c in plan.columns),
        "after": "".join(f"{c['qualified']}: {c['new_type']}\n" for c in plan.columns),
    }


def main():
    argument_spec = connection_argument_spec() | {
        "keys": {"type": "list", "elements": "str", "default": ["auto"]},
        "scope": {"type": "str", "choices": list(SCOPES), "default": "keys"},
        "source_type": {"type": "str", "default": "uuid"},
        "target_type": {"type": "str", "default": "varchar(36)"},
        "collation": {"type": "str"},
        "schemas": {"type": "list", "elements": "str", "default": ["public"]},
        "include_columns": {"type": "list", "elements": "str", "default": []},
        "include_arrays": {"type": "bool", "default": False},
        "fk_validation": {"type": "str", "choices": list(FK_VALIDATION), "default": "in_transaction"},
        "index_build": {"type": "str", "choices": list(INDEX_BUILD), "default": "in_transaction"},
        "value_check": {"type": "str", "choices": list(VALUE_CHECKS), "default": "round_trip"},
        "lock_timeout": {"type": "int", "default": 5000},
        "lock_retries": {"type": "int", "default": 5},
        "lock_retry_delay": {"type": "float", "default": 1.0},
        "statement_timeout": {"type": "int", "default": 0},
        "maintenance_work_mem": {"type": "str", "default": "auto"},
        "progress_file": {"type": "path"},
        "after_commit_workers": {"type": "int", "default": 2},
        "rewrite_mb_per_second": {"type": "float", "default": 50.0},
        "run_timeout": {"type": "int", "default": 0},
    }
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_psycopg2(module)
    p = module.params
    request = ConversionRequest(
        keys=p["keys"], scope=p["scope"], source_type=p["source_type"], target_type=p["target_type"],
        schemas=p["schemas"], include_columns=p["include_columns"], include_arrays=p["include_arrays"],
        fk_validation=p["fk_validation"], index_build=p["index_build"], value_check=p["value_check"],
        rewrite_mb_per_second=p["rewrite_mb_per_second"],
        collation=p["collation"] or None)
    try:
        request.check()
    except ValueError as exc:
        refuse(module, str(exc))
    if p["lock_timeout"] <= 0 or p["lock_retries"] < 0 or p["statement_timeout"] < 0:
        refuse(module, "lock_timeout must be > 0, lock_retries and statement_timeout >= 0")
    if not 1 <= p["after_commit_workers"] <= 16:
        refuse(module, "after_commit_workers must be between 1 and 16")

    progress = _progress_writer(p["progress_file"])
    end_with_controller(progress)  # a killed ansible-playbook ends this run too
    try:
        conn = watched_connect(p)
    except ConnectionFailure as exc:
        refuse(module, str(exc))
    try:
        busy = wait_for_other_run(conn)  # a killed run's session ends within seconds
        if busy:
            refuse(module, f"{busy}; nothing changed, run again once it has ended")
        if module.check_mode:
            try:
                planned = plan_only(conn, request)
                converted = of_target_type(CatalogReader(conn), request)  # counted for "already converted"
                conn.rollback()
            except ValueError as exc:
                refuse(module, str(exc))
            except DatabaseError as exc:
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

        options = RunOptions(lock_timeout_ms=p["lock_timeout"], lock_retries=p["lock_retries"],
                             retry_base_seconds=p["lock_retry_delay"],
                             statement_timeout_ms=p["statement_timeout"],
                             maintenance_work_mem=p["maintenance_work_mem"],
                             progress=progress,
                             connect=lambda: watched_connect(p), after_commit_workers=p["after_commit_workers"])
        deadline = Deadline(conn, p["run_timeout"])
        try:
            outcome = convert(conn, request, options)
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
                         row_counts=outcome.get("row_counts", {}))
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
