"""The gates a protected environment's recovery must pass before anything changes.

- confirm: a protected environment (production by default) is named by the
  operator (-e recovery_confirm=<name>, or the prompt);
- staging_first: a rehearsal environment's recovery succeeded on a schema with
  the same fingerprint, so this run carries out exactly the plan staging proved;
- maintenance_window: now (UTC) is inside the configured weekdays and hours.

Each gate is passed, refused, overridden (by name, in recovery_gate_overrides,
and the run report records it) or not applicable. A playbook meets only the gates
that apply to it (restore.yml and rotate_credentials.yml change no schema: confirm
and the window, not staging first). Pure functions: the module reads the reports
and the clock, this decides.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

GATES = ("confirm", "staging_first", "maintenance_window")
OVERRIDABLE = ("staging_first", "maintenance_window")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PASSED, REFUSED, OVERRIDDEN, NOT_APPLICABLE = "passed", "refused", "overridden", "not applicable"


def check_inputs(*, overrides, window) -> None:
    """ValueError naming the first bad input (before anything is read)."""
    unknown = sorted(set(overrides or []) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"recovery_gate_overrides may name {', '.join(OVERRIDABLE)}, not {', '.join(unknown)} "
                         "(confirm is given with recovery_confirm)")
    if window:
        days = window.get("days") or []
        bad = [d for d in days if str(d).lower()[:3] not in WEEKDAYS]
        start, end = window.get("start_hour"), window.get("end_hour")
        if bad or not days:
            raise ValueError(f"the maintenance window's days must be weekdays (mon..sun), not {bad or days}")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= 24):
            raise ValueError("the maintenance window needs start_hour < end_hour, whole hours 0-24 UTC")


def in_window(window: dict, now: datetime) -> bool:
    now = now.astimezone(UTC)
    days = {str(d).lower()[:3] for d in window["days"]}
    return WEEKDAYS[now.weekday()] in days and window["start_hour"] <= now.hour < window["end_hour"]


def rehearsal_reports(paths) -> list[dict]:
    """Every run-report.json under the given report directories (or files), newest first;
    unreadable ones are skipped (a gate passes only on what it could read)."""
    found = []
    for path in paths or []:
        candidates = [path] if os.path.isfile(path) else [
            os.path.join(root, name) for root, _, names in os.walk(path) for name in names
            if name == "run-report.json"]
        for candidate in candidates:
            try:
                with open(candidate, encoding="utf-8") as handle:
                    report = json.load(handle)
            except (OSError, ValueError):
                continue
            if isinstance(report, dict):
                found.append(report | {"_path": candidate})
    return sorted(found, key=lambda r: str(r.get("run_id", "")), reverse=True)


def _gate(name, status, message):
    return {"gate": name, "status": status, "message": message}


def evaluate(*, environment: str, protected, confirm: str, overrides, window, now: datetime,
             fingerprint: str, reports, applying=GATES) -> list[dict]:
    """One entry per gate: {gate, status, message}; a gate not in applying is not applicable."""
    if environment not in (protected or []):
        return [_gate(g, NOT_APPLICABLE, f"{environment} is not a protected environment") for g in GATES]
    gates = _evaluate_protected(environment=environment, confirm=confirm, overrides=overrides, window=window,
                                now=now, fingerprint=fingerprint, reports=reports)
    return [g if g["gate"] in applying else _gate(g["gate"], NOT_APPLICABLE, "not a gate of this playbook")
            for g in gates]


def _evaluate_protected(*, environment, confirm, overrides, window, now, fingerprint, reports) -> list[dict]:
    gates = []
    if confirm == environment:
        gates.append(_gate("confirm", PASSED, f"confirmed as {environment}"))
    else:
        gates.append(_gate("confirm", REFUSED, f"{environment} is protected: re-run with "
                                               f"-e recovery_confirm={environment} (or answer the prompt)"))

    # The schema staging started from, or the one it ended with (a resumed run after the conversion).
    proving = [r for r in reports if r.get("outcome") == "succeeded"
               and fingerprint in (r.get("schema_fingerprint"), r.get("schema_fingerprint_after"))]
    if proving:
        best = proving[0]
        gates.append(_gate("staging_first", PASSED,
                           f"{best.get('environment', '?')} recovered run {best.get('run_id', '?')} "
                           f"on the same schema ({fingerprint[:12]})"))
    else:
        seen = "; ".join(f"{r.get('environment', '?')} run {r.get('run_id', '?')}: {r.get('outcome', '?')}, schema "
                         f"{str(r.get('schema_fingerprint') or 'unrecorded')[:12]}" for r in reports[:3])
        message = (f"no successful recovery of a rehearsal environment on this schema ({fingerprint[:12]}): "
                   f"recover staging first" + (f" (found {seen})" if seen else " (no rehearsal report found)"))
        status = OVERRIDDEN if "staging_first" in (overrides or []) else REFUSED
        gates.append(_gate("staging_first", status, message))

    if not window:
        gates.append(_gate("maintenance_window", NOT_APPLICABLE, "no maintenance window configured"))
    elif in_window(window, now):
        gates.append(_gate("maintenance_window", PASSED, f"{now.astimezone(UTC):%a %H:%M} UTC is inside "
                                                         f"{_describe(window)}"))
    else:
        status = OVERRIDDEN if "maintenance_window" in (overrides or []) else REFUSED
        gates.append(_gate("maintenance_window", status, f"{now.astimezone(UTC):%a %H:%M} UTC is outside "
                                                         f"{_describe(window)}"))
    return gates


def _describe(window: dict) -> str:
    return (f"the maintenance window ({','.join(str(d).lower()[:3] for d in window['days'])} "
            f"{window['start_hour']:02d}:00-{window['end_hour']:02d}:00 UTC)")


def refusals(gates) -> list[str]:
    return [f"{g['gate']}: {g['message']}" for g in gates if g["status"] == REFUSED]
