"""A durable list of the work a conversion leaves for after its COMMIT.

Index builds (CREATE INDEX CONCURRENTLY) and FK validations deferred past the
COMMIT must not be lost if the run dies between COMMIT and their end: the
database would keep working without an index, or with an FK left NOT VALID,
and a re-run, finding every column converted, would have nothing to do. So
the conversion writes those steps into a table of its own inside the
conversion transaction (they exist exactly when the conversion committed),
each step deletes its row when it has run, and the table and its schema go
away when the list is empty. A later run finds what is left and finishes it.

The steps are SQL this tool executes as the table owner, so a list anyone
else could have written to is refused rather than run.
"""

from __future__ import annotations

import time
from contextlib import suppress

from ansible.module_utils.key_conversion_sql import ident

SCHEMA = "key_conversion"
TABLE = f"{ident(SCHEMA)}.{ident('pending_steps')}"
# One conversion at a time per database: pg_try_advisory_lock(ADVISORY_LOCK_KEY).
ADVISORY_LOCK_KEY = 0x6B63_5F31  # "kc_1"
# Held shared by every extra connection working after COMMIT: a backend that
# outlives its dead run (a CREATE INDEX CONCURRENTLY goes on until it tries to
# answer) keeps the next run from starting the same work beside it.
WORKER_LOCK_KEY = 0x6B63_5F32  # "kc_2"
WRITE_PRIVILEGES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


class PendingListError(Exception):
    """The list cannot be trusted or read. ``list_found``: a list is there (its
    work may be unfinished: every run stops); else only a schema of that name
    belongs to someone else (only runs that would keep a list there stop)."""

    def __init__(self, message: str, *, list_found: bool = True):
        super().__init__(message)
        self.list_found = list_found


def _rows(conn, query: str, params=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description else []


def exists(conn) -> bool:
    """Whether the list is there; PendingListError when its schema is there
    but not this role's (whatever is in it is nothing this tool wrote)."""
    schema = _rows(conn, "SELECT pg_has_role(nspowner, 'USAGE') FROM pg_namespace WHERE nspname = %s", (SCHEMA,))
    if not schema:
        return False
    if not schema[0][0]:
        raise PendingListError(f"schema {SCHEMA} exists and is owned by another role: this tool keeps its "
                               "list of work after COMMIT there, so it does not use it; rename or drop it",
                               list_found=False)
    return _rows(conn, "SELECT to_regclass(%s) IS NOT NULL", (TABLE,))[0][0]


def unfinished_steps(conn) -> int:
    """Read-only, for the investigation: how many steps an earlier run left for
    after its COMMIT (0: no list). A list this role cannot read counts as one:
    the conversion must run, to finish it or to refuse it by name."""
    try:
        if not exists(conn):
            return 0
    except PendingListError:
        return 0  # a schema of that name that is another role's holds no list of ours
    (readable,), = _rows(conn, "SELECT has_table_privilege(%s, 'SELECT')", (TABLE,))
    return _rows(conn, f"SELECT count(*) FROM {TABLE}")[0][0] if readable else 1


def can_create(conn) -> bool:
    """Whether this role may create the list's schema (or it is there already)."""
    return _rows(conn, "SELECT has_database_privilege(current_database(), 'CREATE') "
                       "OR EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s "
                       "AND pg_has_role(nspowner, 'USAGE'))", (SCHEMA,))[0][0]


def _writers(conn) -> tuple[bool, list[str]]:
    """(owned by this role, [other roles that may write to it, by table or column grants])."""
    (owner_ok, writers), = _rows(
        conn,
        """
        SELECT pg_has_role(c.relowner, 'USAGE') AND pg_has_role(n.nspowner, 'USAGE'),
               ARRAY(SELECT DISTINCT CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END
                       FROM (SELECT (aclexplode(c.relacl)).*
                             UNION ALL
                             SELECT (aclexplode(att.attacl)).* FROM pg_attribute att
                              WHERE att.attrelid = c.oid AND att.attacl IS NOT NULL) a
                      WHERE a.grantee <> c.relowner AND a.privilege_type = ANY(%s))
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = to_regclass(%s)
        """,
        (list(WRITE_PRIVILEGES), TABLE))
    return owner_ok, list(writers)


def _check_trusted(conn) -> None:
    owner_ok, writers = _writers(conn)
    if not owner_ok:
        raise PendingListError(f"{TABLE} is owned by a role that is not this one: its steps are not run")
    if writers:
        raise PendingListError(f"{TABLE} may be written by {', '.join(writers)}: its steps are not run; "
                               "revoke those grants, check its rows, and run again")


def read(conn) -> list[tuple[int, str, str]]:
    """[(position, relation, statement)] left by an earlier run, in order; []
    when there is no list. Refused when the table or its schema is owned by
    another role, or another role may write to it."""
    if not exists(conn):
        return []
    _check_trusted(conn)
    return [(position, relation, statement) for position, relation, statement in _rows(
        conn, f"SELECT position, relation, statement FROM {TABLE} ORDER BY position")]


def record(conn, steps: list[tuple[str, str]]) -> list[tuple[int, str, str]]:
    """Write ``steps`` (relation, statement) into the list in the caller's
    transaction; returns them with their positions."""
    if not steps:
        return []
    for statement in (f"CREATE SCHEMA IF NOT EXISTS {ident(SCHEMA)}",
                      f"CREATE TABLE IF NOT EXISTS {TABLE} (position integer PRIMARY KEY, "
                      "relation text NOT NULL, statement text NOT NULL, "
                      "recorded_at timestamptz NOT NULL DEFAULT now())",
                      f"REVOKE ALL ON {TABLE} FROM PUBLIC"):
        _rows(conn, statement)
    # Default privileges may have granted others rights on it as it was made: take them back.
    owner_ok, writers = _writers(conn)
    if owner_ok:
        for role in writers:
            _rows(conn, f"REVOKE ALL ON {TABLE} FROM {ident(role)}")
    _check_trusted(conn)  # made by someone else meanwhile: refused, and the conversion rolls back
    (start,), = _rows(conn, f"SELECT COALESCE(max(position), 0) FROM {TABLE}")
    entries = [(start + number, relation, statement) for number, (relation, statement) in enumerate(steps, 1)]
    _rows(conn, f"INSERT INTO {TABLE} (position, relation, statement) "
                "SELECT * FROM unnest(%s::int[], %s::text[], %s::text[])",
          ([e[0] for e in entries], [e[1] for e in entries], [e[2] for e in entries]))
    return entries


def mark_done(conn, position: int) -> None:
    """Autocommit connection: the step at ``position`` has run."""
    _rows(conn, f"DELETE FROM {TABLE} WHERE position = %s", (position,))


def remove_if_empty(conn) -> bool:
    """Autocommit connection: drop the list and its schema once no step is
    left; True when nothing is left."""
    if not exists(conn):
        return True
    if _rows(conn, f"SELECT EXISTS (SELECT 1 FROM {TABLE})")[0][0]:
        return False
    _rows(conn, f"DROP TABLE {TABLE}")
    with suppress(Exception):  # something else was put in the schema: leave it
        _rows(conn, f"DROP SCHEMA {ident(SCHEMA)}")
    return True


def try_lock(conn) -> str | None:
    """Take the session-level lock of one conversion run per database; None
    when taken, else why not (the lock is then not held)."""
    if not _rows(conn, "SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))[0][0]:
        return f"another key conversion is running on this database (it holds advisory lock {ADVISORY_LOCK_KEY})"
    if _rows(conn, "SELECT pg_try_advisory_lock(%s)", (WORKER_LOCK_KEY,))[0][0]:
        _rows(conn, "SELECT pg_advisory_unlock(%s)", (WORKER_LOCK_KEY,))
        return None
    pids = [pid for pid, in _rows(conn, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = %s "
                                        "AND database = (SELECT oid FROM pg_database "
                                        "WHERE datname = current_database()) ORDER BY 1", (WORKER_LOCK_KEY,))]
    unlock(conn)
    return (f"backends of an earlier conversion run are still working after its commit (pids "
            f"{', '.join(map(str, pids)) or 'unknown'}); wait for them or end them, then run again")


def hold_worker_lock(conn) -> None:
    """On an extra after-commit connection (autocommit): see WORKER_LOCK_KEY."""
    _rows(conn, "SELECT pg_advisory_lock_shared(%s)", (WORKER_LOCK_KEY,))


def unlock(conn) -> None:
    with suppress(Exception):  # a lost connection has released it already
        _rows(conn, "SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))


# A run whose ansible-playbook was killed: its server session ends once the server sees the
# connection closed (client_connection_check_interval, set by the module), at the latest when
# its statement ends. A run started right after waits this long for it before refusing.
OTHER_RUN_WAIT_SECONDS = 15.0


def other_run(conn) -> str | None:
    """Who else holds the run lock on this database (pids and what they do), or None."""
    rows = _rows(conn, "SELECT l.pid, coalesce(a.application_name, ''), coalesce(a.state, '') "
                       "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
                       "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s "
                       "AND l.pid <> pg_backend_pid() AND l.database = "
                       "(SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY 1",
                 (ADVISORY_LOCK_KEY,))
    if not rows:
        return None
    return ("another key conversion is running on this database: "
            + ", ".join(f"pid {pid} ({name or 'no application name'}, {state or 'state unknown'})"
                        for pid, name, state in rows))


def wait_for_other_run(conn, seconds: float = OTHER_RUN_WAIT_SECONDS, *, sleep=None, clock=None) -> str | None:
    """None once no other session holds the run lock, waiting up to ``seconds`` (the backend
    of a killed run is ending); else who still holds it. Rolls back after each look."""
    sleep, clock = sleep or time.sleep, clock or time.monotonic
    deadline = clock() + seconds
    while True:
        try:
            busy = other_run(conn)
        finally:
            if not conn.autocommit:
                conn.rollback()
        if busy is None or clock() >= deadline:
            return busy
        sleep(0.5)
