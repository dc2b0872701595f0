"""Log lines of services and Postgres instances, as ``GET /logs`` returns them."""

from __future__ import annotations

import secrets
import threading
from datetime import timedelta

from localenv.render_sim.common import iso, now


class LogStore:
    """Log lines with strictly increasing timestamps, as the /logs time pagination needs."""

    def __init__(self):
        self.entries: list[dict] = []
        self._lock = threading.Lock()
        self._last = None

    def add(self, resource: str, message: str, *, log_type: str = "app", level: str = "info",
            instance: str | None = None) -> None:
        with self._lock:
            moment = now()
            if self._last is not None and moment <= self._last:
                moment = self._last + timedelta(microseconds=1)
            self._last = moment
            labels = {"resource": resource, "level": level, "type": log_type}
            if instance:
                labels["instance"] = instance
            self.entries.append({"id": secrets.token_hex(8) + "-" + str(len(self.entries)),
                                 "at": moment, "message": message, "labels": labels})

    def query(self, resources, start, end, direction, limit, filters):
        def matches(entry):
            if entry["labels"]["resource"] not in resources or not start <= entry["at"] <= end:
                return False
            for name, wanted in filters.items():
                if not wanted:
                    continue
                if name == "text":
                    if not any(_text_match(w, entry["message"]) for w in wanted):
                        return False
                elif entry["labels"].get(name) not in wanted:
                    return False
            return True

        with self._lock:
            found = [e for e in self.entries if matches(e)]
        if direction == "backward":
            found.reverse()
        page = found[:limit]
        has_more = len(found) > limit
        next_start, next_end = start, end
        if has_more:
            tick = timedelta(microseconds=1)
            if direction == "backward":
                next_end = page[-1]["at"] - tick
            else:
                next_start = page[-1]["at"] + tick
        return {
            "hasMore": has_more,
            "nextStartTime": iso(next_start),
            "nextEndTime": iso(next_end),
            "logs": [{"id": e["id"], "message": e["message"], "timestamp": iso(e["at"]),
                      "labels": [{"name": k, "value": v} for k, v in e["labels"].items()]}
                     for e in page],
        }


def _text_match(pattern: str, message: str) -> bool:
    import fnmatch

    if "*" in pattern or "?" in pattern:
        return fnmatch.fnmatchcase(message, pattern)
    return pattern in message

