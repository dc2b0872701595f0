"""A conversion lives exactly as long as the ansible-playbook that started it.

The module runs synchronously (no async job that outlives the run and commits with nobody to
report it). Ansible starts each task in a worker that calls setsid(), so killing
ansible-playbook's process group (Ctrl-C, kill -- -PGID) does not reach the module by itself:
``ControllerWatch`` records the chain of processes from the module up to ansible-playbook and,
when a link of it goes (the controller or the worker died), ends the module at once. Its
connections close; a server session whose client is gone can never COMMIT, and with
``client_connection_check_interval`` the server notices within a second in the middle of a
statement (a table rewrite, an index build) and rolls back, releasing its locks. Killed after
COMMIT, the unfinished steps stay in the durable list for the next run. A run started right
after finds the database as it was (key_conversion_after_commit_list.wait_for_other_run covers the
second in between).

``Deadline`` bounds the whole run: past it the running statement is cancelled, so before
COMMIT everything rolls back.
"""

from __future__ import annotations

import os
import threading
from contextlib import suppress

from ansible.module_utils.pg_connection import connect

CLIENT_CHECK_INTERVAL = "1s"
FIRST_VERSION_WITH_CHECK = 140000  # PostgreSQL 14 added client_connection_check_interval


def watched(conn):
    """``conn`` with the dead-client check on for its whole session (committed, so that the
    caller's first rollback keeps it)."""
    if conn.server_version >= FIRST_VERSION_WITH_CHECK:
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('client_connection_check_interval', %s, false)",
                        (CLIENT_CHECK_INTERVAL,))
        if not conn.autocommit:
            conn.commit()
    return conn


def watched_connect(params: dict):
    return watched(connect(params))


class Deadline:
    """After ``seconds`` (0: never), cancel ``conn``'s statement once a second until stopped;
    ``expired`` tells whether it did."""

    def __init__(self, conn, seconds: float):
        self.expired = False
        self._stop = threading.Event()
        self._thread = None
        if seconds and seconds > 0:
            self._thread = threading.Thread(target=self._run, args=(conn, float(seconds)), daemon=True)
            self._thread.start()

    def _run(self, conn, seconds):
        if self._stop.wait(seconds):
            return
        self.expired = True
        while not self._stop.is_set():
            with suppress(Exception):  # a closed connection has nothing left to cancel
                conn.cancel()
            self._stop.wait(1.0)

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


CONTROLLERS = frozenset({"ansible-playbook", "ansible", "ansible-console"})


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    return int(stat.rsplit(b")", 1)[1].split()[1])


def _is_controller(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
    except OSError:
        return False
    return any(os.path.basename(arg.decode(errors="replace")) in CONTROLLERS for arg in argv[:2])


def controller_chain(start: int | None = None) -> list[tuple[int, int]] | None:
    """[(pid, parent pid)] from ``start`` (this process) up to the ansible controller (the
    topmost ansible-playbook process), or None when not run by one (or without /proc)."""
    chain, pid = [], start or os.getpid()
    while pid and pid > 1:
        parent = _parent(pid)
        if parent is None:
            return None
        chain.append((pid, parent))
        if _is_controller(parent) and not _is_controller(_parent(parent)):
            return chain
        pid = parent
    return None


class ControllerWatch:
    """Calls ``on_gone()`` (which should end the process) once a process between this one
    and the ansible controller has gone: the run that started this module is dead."""

    def __init__(self, on_gone, *, interval: float = 0.5, chain=None):
        self.chain = chain if chain is not None else controller_chain()
        self._stop = threading.Event()
        self._on_gone = on_gone
        if self.chain:
            threading.Thread(target=self._run, args=(interval,), daemon=True).start()

    def _run(self, interval):
        while not self._stop.wait(interval):
            if any(_parent(pid) != parent for pid, parent in self.chain):
                self._on_gone()
                return

    def stop(self):
        self._stop.set()


def end_with_controller(progress=None) -> ControllerWatch:
    """Watch the controller; when it is gone, say so in the progress file and end this process
    at once (nobody is left to report to; the server rolls back what is not committed)."""
    def gone():
        if progress:
            progress("the ansible-playbook that started this run is gone: stopping; the server rolls back what "
                     "is not committed, steps after a COMMIT stay recorded for the next run")
        os._exit(1)

    return ControllerWatch(gone)
