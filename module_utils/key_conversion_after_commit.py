"""The work after a conversion's COMMIT: VALIDATE the FKs re-added NOT VALID,
ANALYZE the changed columns.

None of it blocks the application (VALIDATE CONSTRAINT takes SHARE UPDATE
EXCLUSIVE on the referencing table and ROW SHARE on the referenced one), and
different tables do not wait for each other, so the statements run on a few
connections at once, one table's statements in order on one connection (two
of them on one table would only queue). A failure is reported, never raised:
the conversion is committed whatever happens here.
"""

from __future__ import annotations

import queue
import threading
from contextlib import suppress

from ansible.module_utils.key_conversion_sql import literal


def group_by_relation(steps: list[tuple[str, str]]) -> list[list[str]]:
    """Statements grouped per relation, in their order; the largest groups
    first so that the longest queue starts early."""
    groups: dict[str, list[str]] = {}
    for relation, statement in steps:
        groups.setdefault(relation, []).append(statement)
    return [groups[relation] for relation in sorted(groups, key=lambda r: (-len(groups[r]), r))]


def run_after_commit(conn, steps: list[tuple[str, str]], *, memory: str, connect=None, workers: int = 1,
                     say=None) -> tuple[list[str], list[str]]:
    """Run ``steps`` ((relation, statement), autocommit) on ``conn`` and up to
    ``workers - 1`` more connections from ``connect()``; (executed, errors)."""
    say = say or (lambda message: None)
    pending: queue.Queue = queue.Queue()
    for group in group_by_relation(steps):
        pending.put(group)
    executed: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    connections = [conn]
    for _ in range(max(0, min(workers, pending.qsize()) - 1)):
        try:
            extra = connect()
        except Exception as exc:  # fewer workers, never a failure: the main connection does the rest
            say(f"after commit: one connection fewer ({str(exc).strip()})")
            break
        connections.append(extra)

    def work(connection):
        # VALIDATE CONSTRAINT runs its check with maintenance_work_mem as work_mem:
        # the memory the in-transaction checks had, for this session only.
        statements = [f"SET maintenance_work_mem TO {literal(memory)}"]
        while True:
            try:
                group = pending.get_nowait()
            except queue.Empty:
                return
            for statement in statements + group:
                say(statement)
                try:
                    with connection.cursor() as cur:
                        cur.execute(statement)
                    with lock:
                        executed.append(statement)
                except Exception as exc:
                    with lock:
                        errors.append(f"{statement}: {str(exc).strip()}")
            statements = []

    for connection in connections:
        connection.autocommit = True
    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in connections[1:]]
    for thread in threads:
        thread.start()
    work(conn)
    for thread in threads:
        thread.join()
    for extra in connections[1:]:
        with suppress(Exception):
            extra.close()
    return executed, errors
