"""What the run report and the verification report share: the step and check
words and reading the results roles leave (run ids: module_utils/run_id.py; redaction:
module_utils/redaction.py).

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


# A run without Render says so wherever a Render step would be.
RENDER_OFF = "not used: recovery_render is false (no maintenance mode, deploy, health check or credential rotation)"
ONLINE_SERVING = ("not used: the online conversion (convert_keys_mode: online) kept the app serving; the backup was "
                  "taken while it wrote, so a restore would lose the writes after it")


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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

