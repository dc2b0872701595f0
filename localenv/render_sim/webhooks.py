"""A webhook receiver beside the simulated API, so tests can read what a run notified.

``POST /__sim__/webhook/<name>`` takes any JSON body without authentication, as a
Slack incoming webhook does (its URL is its secret), records it and answers ``ok``;
the name ``fail`` answers 500 instead (a receiver that is down). ``GET
/__sim__/webhooks`` (with the API key) lists what was received; ``DELETE`` clears.
"""

from __future__ import annotations

import json
import threading

RECEIVE_PREFIX = "/__sim__/webhook/"


class WebhookInbox:
    def __init__(self):
        self._lock = threading.Lock()
        self._received: list[dict] = []

    def receive(self, path: str, raw: bytes) -> tuple[int, str]:
        """Record one delivery; (status, plain-text answer)."""
        name = path[len(RECEIVE_PREFIX):].strip("/")
        if name == "fail":
            return 500, "receiver failing"
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            return 400, "invalid JSON"
        with self._lock:
            self._received.append({"name": name, "body": body})
        return 200, "ok"

    def listed(self) -> list[dict]:
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
