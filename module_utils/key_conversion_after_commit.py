"""The work after a conversion's COMMIT: build the secondary indexes dropped
inside (CREATE INDEX CONCURRENTLY), VALIDATE the FKs re-added NOT VALID,
ANALYZE the changed columns.

None of it blocks the application (CREATE INDEX CONCURRENTLY and VALIDATE
CONSTRAINT take SHARE UPDATE EXCLUSIVE on their table, VALIDATE ROW SHARE on
the referenced one), and
different tables do not wait for each other, so the statements run on a few
connections at once, one table's statements in order on one connection (two
of them on one table would only queue). A failure is reported, never raised:
the conversion is committed whatever happens here.
"""

from __future__ import annotations

import queue
import threading
from contextlib import suppress

from ansible.module_utils import key_conversion_sql as q

# An index of this name in the table's schema, and whether it is valid.
INDEX_NAMED = """
SELECT ic.oid::regclass::text, i.indisvalid
  FROM pg_class ic JOIN pg_index i ON i.indexrelid = ic.oid
 WHERE ic.relname = %s AND ic.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = %s::regclass)
"""


def group_by_relation(steps: list[tuple[str, str]]) -> list[tuple[str, list[tuple[int, str]]]]:
    """(relation, [(step number, statement)]) per relation, in their order;
    the largest groups first so that the longest queue starts early."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for number, (relation, statement) in enumerate(steps):
        groups.setdefault(relation, []).append((number, statement))
    return [(relation, groups[relation]) for relation in sorted(groups, key=lambda r: (-len(groups[r]), r))]


def _index_built_by(connection, relation: str, name: str) -> tuple[str, bool] | None:
    """(regclass text, valid) of the index ``name`` in ``relation``'s schema, or None."""
    with connection.cursor() as cur:
        cur.execute(INDEX_NAMED, (name, relation))
        return cur.fetchone()


def _drop_invalid_leftover(connection, relation: str, statement: str, say) -> str | None:
    """A CREATE INDEX CONCURRENTLY that failed or was killed leaves an INVALID
    index under its name, which IF NOT EXISTS would then skip: drop it first.
    Returns the DROP executed, if any."""
    name = q.concurrent_index_name(statement)
    found = _index_built_by(connection, relation, name) if name else None
    if not found or found[1]:
        return None
    drop = q.drop_index(found[0], concurrently=True)
    say(f"dropping the invalid index {found[0]} an interrupted build left: {drop}")
    with connection.cursor() as cur:
        cur.execute(drop)
    return drop


def invalid_builds(conn, steps: list[tuple[str, str]]) -> list[str]:
    """For each CREATE INDEX CONCURRENTLY among ``steps``: a message when its
    index is missing or not valid afterwards."""
    problems = []
    for relation, statement in steps:
        name = q.concurrent_index_name(statement)
        if name is None:
            continue
        found = _index_built_by(conn, relation, name)
        if not found or not found[1]:
            problems.append(f"index {name} on {relation} is {'not valid' if found else 'missing'} after its build")
    return problems


def open_extra(connect, count: int, prepare, say, what: str) -> list:
    """Up to ``count`` more connections from ``connect()``, each made ready by
    ``prepare(connection)``; fewer, never a failure, when one cannot be had
    (the caller's own connection does the rest)."""
    extras = []
    for _ in range(max(0, count)):
        extra = None
        try:
            extra = connect()
            prepare(extra)
        except Exception as exc:
            say(f"{what}: one connection fewer ({str(exc).strip()})")
            if extra is not None:
                with suppress(Exception):
                    extra.close()
            break
        extras.append(extra)
    return extras


def run_on(connections: list, work) -> None:
    """``work(connection)`` on every connection at once (a thread for each but
    the first, which is the caller's); the extra connections are closed after."""
    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in connections[1:]]
    for thread in threads:
        thread.start()
    try:
        work(connections[0])
    finally:
        for thread in threads:
            thread.join()
        for extra in connections[1:]:
            with suppress(Exception):
                extra.close()


def run_after_commit(conn, steps: list[tuple[str, str]], *, memory: str, connect=None, workers: int = 1,
                     say=None, on_done=None, on_connect=None) -> tuple[list[str], list[str]]:
    """Run ``steps`` ((relation, statement), autocommit) on ``conn`` and up to
    ``workers - 1`` more connections from ``connect()``; (executed, errors).
    ``on_connect(connection)`` prepares each extra connection, ``on_done(connection,
    step number)`` follows each step that succeeded."""
    say = say or (lambda message: None)
    pending: queue.Queue = queue.Queue()
    for group in group_by_relation(steps):
        pending.put(group)
    executed: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def prepare(extra):
        extra.autocommit = True
        if on_connect:
            on_connect(extra)

    connections = [conn, *open_extra(connect, min(workers, pending.qsize()) - 1, prepare, say, "after commit")]

    def work(connection):
        # VALIDATE CONSTRAINT runs its check with maintenance_work_mem as work_mem:
        # the memory the in-transaction checks had, for this session only.
        statements = [(None, f"SET maintenance_work_mem TO {q.literal(memory)}")]
        while True:
            try:
                relation, group = pending.get_nowait()
            except queue.Empty:
                return
            for number, statement in statements + group:
                say(statement)
                try:
                    dropped = _drop_invalid_leftover(connection, relation, statement, say)
                    if dropped:
                        with lock:
                            executed.append(dropped)
                    with connection.cursor() as cur:
                        cur.execute(statement)
                    if on_done is not None and number is not None:
                        on_done(connection, number)
                    with lock:
                        executed.append(statement)
                except Exception as exc:
                    with lock:
                        errors.append(f"{statement}: {str(exc).strip()}")
            statements = []

    conn.autocommit = True
    run_on(connections, work)
    return executed, errors
