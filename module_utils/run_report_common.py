"""What the run report and the verification report share: the step and check
words, run ids, redaction of a run's secrets, and reading the results roles leave.

Pure: no I/O, no Ansible.
"""

from __future__ import annotations

from datetime import UTC, datetime

REPORT_VERSION = 1

DONE = "done"
SKIPPED = "skipped"
FAILED = "failed"
NOT_REACHED = "not reached"
CHECKED = "checked (check mode)"

RUN_ID_FORMAT = "%Y%m%dT%H%M%SZ"
REDACTED = "[redacted]"

# A run without Render says so wherever a Render step would be.
RENDER_OFF = "not used: recovery_render is false (no maintenance mode, deploy, health check or credential rotation)"


def redact(value, secrets):
    """value with every occurrence of each non-empty secret replaced, recursively."""
    secrets = sorted({s for s in (secrets or []) if isinstance(s, str) and s}, key=len, reverse=True)
    if not secrets:
        return value

    def walk(item):
        if isinstance(item, str):
            for secret in secrets:
                item = item.replace(secret, REDACTED)
            return item
        if isinstance(item, dict):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    return walk(value)


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_id_time(run_id: str) -> str | None:
    """The ISO time a run id like 20261124T014249Z names, or None."""
    try:
        return utc_iso(datetime.strptime(run_id or "", RUN_ID_FORMAT).replace(tzinfo=UTC))
    except ValueError:
        return None


def _seconds_between(start: str | None, end: str | None) -> float | None:
    try:
        first = datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ")
        last = datetime.strptime(end, "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        return None
    return (last - first).total_seconds()


def task_ran(result) -> bool:
    """A registered result of a task that ran (not skipped, not missing)."""
    return isinstance(result, dict) and bool(result) and not result.get("skipped")


def task_failed(result) -> bool:
    return task_ran(result) and bool(result.get("failed"))


def dig(data, *path, default=None):
    for key in path:
        if not isinstance(data, dict) or key not in data or data[key] is None:
            return default
        data = data[key]
    return data


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def md_table(headers, rows) -> list[str]:
    if not rows:
        return ["_none_", ""]
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def short_list(items, limit=5) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")

