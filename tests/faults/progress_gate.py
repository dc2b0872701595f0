"""Stop a conversion at an exact line of its progress log, then act while it waits.

The convert_keys module opens its progress file for each line it writes
(O_WRONLY|O_APPEND). Made a FIFO, that open blocks until a reader opens it: the gate
reads each line as it is written and, on the trigger line, drains what else is there,
closes its end and runs the action (a pg_terminate_backend) before reading on. From
then on the module blocks at its next progress line until the action is over, so the
kill lands before the step after that line, by construction, not by timing; every line
the module got out meanwhile is in lines_after_trigger, for the test to check the phase.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading


class ProgressGate:
    def __init__(self, path: str, trigger: str, action):
        self.path = path
        self.trigger = re.compile(trigger)
        self.action = action
        self.lines: list[str] = []
        self.fired_at: str | None = None
        self.lines_after_trigger: list[str] = []  # written before the gate closed
        self.result = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        os.mkfifo(path, 0o600)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            fd = os.open(self.path, os.O_RDONLY)  # blocks until the module opens it to write
            fired = False
            buffer = b""
            try:
                while True:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        text = line.decode("utf-8", "replace")
                        if self.fired_at is not None and not fired:
                            self.lines.append(text)
                            continue
                        if fired:
                            self.lines_after_trigger.append(text)
                            continue
                        self.lines.append(text)
                        if self.trigger.search(text):
                            self.fired_at = text
                            fired = True
                    if fired:
                        os.set_blocking(fd, False)
                        with contextlib.suppress(BlockingIOError):
                            buffer += os.read(fd, 65536)
                        self.lines_after_trigger += [text for text in buffer.decode("utf-8", "replace")
                                                     .splitlines() if text]
                        break
            finally:
                os.close(fd)
            if fired:
                try:
                    self.result = self.action()
                except BaseException as exc:  # reported by stop()
                    self.error = exc

    def stop(self):
        self._stop.set()
        # A reader blocked in open() counts as a reader: a non-blocking writer wakes it.
        with contextlib.suppress(OSError):
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        self._thread.join(timeout=10)
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        if self.error is not None:
            raise self.error

