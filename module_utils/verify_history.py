"""What the scheduled verification reads and prunes under reports/<host>/: the newest successful
conversion (a run folder's conversion.json or run-report.json), the newest clean verify-*.json,
and the oldest verify-* reports beyond those kept. The rules for what counts are
module_utils/verify_report.py's; this module only finds the files.
"""

from __future__ import annotations

import json
import os

from ansible.module_utils.verify_report import conversion_record, is_run_dir_name, verify_record

# Newest run folders read when looking for the last successful conversion.
MAX_RUNS_SCANNED = 200


def _load(path: str):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def last_conversion(host_dir: str) -> dict | None:
    """The newest run folder (names are UTC timestamps, so they sort by time) holding a
    successful conversion, as conversion_record() reads it."""
    try:
        names = sorted((n for n in os.listdir(host_dir) if is_run_dir_name(n)
                        and os.path.isdir(os.path.join(host_dir, n))), reverse=True)
    except FileNotFoundError:
        return None
    for name in names[:MAX_RUNS_SCANNED]:
        run = os.path.join(host_dir, name)
        conversion = _load(os.path.join(run, "conversion.json"))
        run_report = _load(os.path.join(run, "run-report.json"))
        if conversion is None and run_report is None:
            continue
        if conversion_record(name, conversion=conversion, run_report=run_report) is not None:
            return conversion_record(name, conversion=conversion, run_report=run_report,
                                     findings=_load(os.path.join(run, "findings.json")))
    return None


def last_clean_verification(host_dir: str) -> dict | None:
    """The newest verify-<timestamp>.json whose result was ok, as verify_record() reads it."""
    try:
        names = sorted((n[:-5] for n in os.listdir(host_dir) if n.startswith("verify-") and n.endswith(".json")),
                       reverse=True)
    except FileNotFoundError:
        return None
    for name in names[:MAX_RUNS_SCANNED]:
        record = verify_record(name, _load(os.path.join(host_dir, name + ".json")))
        if record is not None:
            return record
    return None


def prune_verify_reports(host_dir: str, keep: int) -> list[str]:
    """Delete the oldest verify-<timestamp>.{json,md} beyond keep (counted in reports, not files)."""
    if keep <= 0:
        return []
    try:
        stamps = sorted({n.rsplit(".", 1)[0] for n in os.listdir(host_dir)
                         if n.startswith("verify-") and n.endswith((".json", ".md"))}, reverse=True)
    except FileNotFoundError:
        return []
    deleted = []
    # The report about to be written counts as one of the kept.
    for stamp in stamps[max(keep - 1, 0):]:
        for ext in (".json", ".md"):
            path = os.path.join(host_dir, stamp + ext)
            if os.path.isfile(path):
                os.remove(path)
                deleted.append(path)
    return deleted
