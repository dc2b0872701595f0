"""The deploy's logs scanned for what a recovery must not leave behind.

After the deploy is live and the smoke requests ran, the service's log lines of the
last N minutes (never older than the deploy judged, so the failed deploys that started
the incident are not counted) are read through Render's ``GET /logs`` and matched
against regular expressions: foreign-key violations, type errors (``operator does not
exist``, ``incompatible types``) and tracebacks by default. A hit names its line,
shortened and redacted (the run's secrets, and any password in a URL).

``scan_logs`` takes a client with ``query_logs``, ``get_service`` and ``list_deploys``
(module_utils/render_api.py's RenderClient), so the unit tests pass a fake one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ansible.module_utils.redaction import redact

MAX_HITS = 20      # hits kept in the result; the count says how many there were
MAX_LINE = 300     # characters of a hit's line shown


def compile_patterns(patterns) -> list[tuple[str, re.Pattern]]:
    """(pattern, compiled) for each; ValueError naming the first that is not a regular expression."""
    compiled = []
    for pattern in patterns or []:
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"log pattern {pattern!r} is not a non-empty string")
        try:
            compiled.append((pattern, re.compile(pattern)))
        except re.error as exc:
            raise ValueError(f"log pattern {pattern!r} is not a regular expression: {exc}") from None
    return compiled


def parse_time(value: str) -> datetime:
    value = value.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def window(now: datetime, minutes: float, since: str | None) -> tuple[datetime, datetime]:
    """(start, end): the last ``minutes`` before now, but never before ``since`` (the deploy's start)."""
    start = now - timedelta(minutes=float(minutes))
    if since:
        start = max(start, parse_time(since))
    return start, now


def match_lines(entries, compiled, secrets=()) -> tuple[int, list[dict]]:
    """(how many lines matched, the first MAX_HITS hits {timestamp, pattern, line}), lines redacted."""
    count, hits = 0, []
    for entry in entries:
        message = str(entry.get("message") or "")
        found = next((pattern for pattern, regex in compiled if regex.search(message)), None)
        if found is None:
            continue
        count += 1
        if len(hits) < MAX_HITS:
            line = " ".join(redact(message, secrets, mask_urls=True).split())
            hits.append({"timestamp": entry.get("timestamp"), "pattern": found,
                         "line": line if len(line) <= MAX_LINE else line[:MAX_LINE - 1] + "\u2026"})
    return count, hits


def newest_live_since(client, service_id: str) -> str | None:
    """When the service's newest live deploy was created: without a deploy in this run, its lines are judged."""
    deploys = client.list_deploys(service_id, status="live", limit=1, max_items=1)
    return deploys[0].get("createdAt") if deploys else None


def scan_logs(client, service_id: str, *, patterns, minutes: float, since: str | None = None, types=(),
              max_lines: int = 2000, secrets=(), now: datetime | None = None) -> dict:
    """Read and scan; returns {ok, lines_checked, complete, start, end, minutes, since, matched, hits, msg}."""
    compiled = compile_patterns(patterns)
    since = since or newest_live_since(client, service_id)
    start, end = window(now or datetime.now(UTC), minutes, since)
    owner = client.get_service(service_id)["ownerId"]
    # Newest first: when there are more lines than max_lines, those after the smoke requests are read.
    read = client.query_logs(owner, [service_id], start_time=iso(start), end_time=iso(end), direction="backward",
                             filters={"type": list(types or [])}, max_logs=max_lines)
    entries = read.get("logs") or []
    matched, hits = match_lines(entries, compiled, secrets)
    result = {"ok": matched == 0, "lines_checked": len(entries), "complete": not read.get("has_more"),
              "start": iso(start), "end": iso(end), "minutes": minutes, "since": since, "matched": matched,
              "hits": hits, "patterns": [p for p, _ in compiled]}
    result["msg"] = scan_message(result, service_id)
    return result


def scan_message(result: dict, service_id: str) -> str:
    checked = (f"{result['lines_checked']} log lines of {service_id} since {result['start']}"
               + ("" if result["complete"] else " (the newest ones only: more lines exist than were read)"))
    if result["ok"]:
        return f"{checked}: none matches a failure pattern"
    shown = "; ".join(f"[{h['timestamp']}] {h['line']} (matches {h['pattern']!r})" for h in result["hits"][:5])
    more = f" and {result['matched'] - 5} more" if result["matched"] > 5 else ""
    return f"{result['matched']} of {checked} match a failure pattern: {shown}{more}"
