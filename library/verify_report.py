#!/usr/bin/python
"""Assemble the report of a scheduled verification; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: verify_report
short_description: Assemble the report of a scheduled verification
description:
  - Turns the read-only probes of the verify role (C(playbooks/verify.yml)) into the verification report,
    comparing the foreign keys with the newest known-good record under O(report_dir)/O(host)/
    (a successful conversion's C(conversion.json) or C(run-report.json), or a clean C(verify-*.json)),
    and lists every drift.
  - Writes nothing except, with O(keep_verify_reports), deleting the oldest C(verify-*) reports of the
    host beyond that number. Returns C(changed=false), since reports are output, not managed state.
  - Every string of the result has each of O(secrets) replaced by C([redacted]).
options:
  evidence:
    description: The keys C(findings), C(findings_error), C(alembic_versions_dir), C(plan), C(gate), C(service),
      C(health) (the probes' registered results).
    type: dict
    required: true
  environment:
    description: The environment's name (recovery_environment).
    type: str
    required: true
  inventory:
    description: The C(-i) option(s) of the commands the report names; empty says C(-i <your inventory>).
    type: str
    default: ""
  host:
    description: The inventory host.
    type: str
    required: true
  report_dir:
    description: The reports directory; the runs in O(report_dir)/O(host)/ are read.
    type: path
    required: true
  render_configured:
    description: Whether Render is verified (recovery_render); false skips maintenance and health.
    type: bool
    default: false
  expected_key_type:
    description: The key type the models expect, as the check names it.
    type: str
    default: ""
  keep_verify_reports:
    description: Keep this many C(verify-*) reports per host, deleting the oldest; 0 keeps all.
    type: int
    default: 0
  accept_foreign_keys:
    description:
      - Take the current foreign keys as the new baseline instead of reporting their difference as drift
        (after a migration that drops one on purpose). The other checks still apply.
    type: bool
    default: false
  secrets:
    description: Values that must never appear in a report (database URL and password, API key).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Computes the same in check mode; run it with C(check_mode=false) to prune.
  diff_mode:
    support: none
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Assemble the verification report
  verify_report:
    environment: "{{ recovery_environment }}"
    host: "{{ inventory_hostname }}"
    report_dir: /srv/recovery/reports
    evidence:
      findings: "{{ findings }}"
      plan: "{{ plan }}"
      gate: "{{ gate }}"
    secrets: ["{{ recovery_database_url }}"]
  register: report
  no_log: true
"""

RETURN = r"""
report:
  description: The report as written to verify-<timestamp>.json.
  returned: always
  type: dict
markdown:
  description: The report as Markdown.
  returned: always
  type: str
summary:
  description: One line naming every drift.
  returned: always
  type: str
failing:
  description: Number of drifted or unverifiable checks.
  returned: always
  type: int
pruned:
  description: Verify reports deleted by O(keep_verify_reports).
  returned: always
  type: list
  elements: str
"""

import json
import os
from datetime import UTC, datetime

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.run_report_common import utc_iso
from ansible.module_utils.verify_report import (
    assemble_verify_report,
    conversion_record,
    is_run_dir_name,
    newest_baseline,
    render_verify_markdown,
    verify_record,
    verify_summary,
)

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


def main():
    module = AnsibleModule(
        argument_spec={
            "evidence": {"type": "dict", "required": True},
            "environment": {"type": "str", "required": True},
            "inventory": {"type": "str", "default": ""},
            "host": {"type": "str", "required": True},
            "report_dir": {"type": "path", "required": True},
            "render_configured": {"type": "bool", "default": False},
            "expected_key_type": {"type": "str", "default": ""},
            "keep_verify_reports": {"type": "int", "default": 0},
            "accept_foreign_keys": {"type": "bool", "default": False},
            "secrets": {"type": "list", "elements": "str", "default": [], "no_log": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    host_dir = os.path.join(p["report_dir"], p["host"])
    report = assemble_verify_report(
        p["evidence"], environment=p["environment"], host=p["host"], generated_at=utc_iso(datetime.now(UTC)),
        baseline=newest_baseline(last_conversion(host_dir), last_clean_verification(host_dir)),
        render_configured=p["render_configured"],
        expected_key_type=p["expected_key_type"], accept_foreign_keys=p["accept_foreign_keys"],
        secrets=[s for s in p["secrets"] if s], inventory=p["inventory"])
    pruned = [] if module.check_mode else prune_verify_reports(host_dir, p["keep_verify_reports"])
    failing = sum(1 for c in report["checks"] if c["status"] in ("drift", "error"))
    module.exit_json(changed=False, report=report, markdown=render_verify_markdown(report),
                     summary=verify_summary(report), failing=failing, pruned=pruned)


if __name__ == "__main__":
    main()
