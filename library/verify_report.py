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
attributes:
  check_mode:
    support: full
    description: Computes the same in check mode; run it with C(check_mode=false) to prune.
  diff_mode:
    support: none
extends_documentation_fragment: [report_module]
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

import os
from datetime import UTC, datetime

from ansible.module_utils.module_refusal import RefusingModule
from ansible.module_utils.report_module import exit_with_report, given_secrets, report_argument_spec
from ansible.module_utils.run_report_common import utc_iso
from ansible.module_utils.verify_history import last_clean_verification, last_conversion, prune_verify_reports
from ansible.module_utils.verify_report import (
    assemble_verify_report,
    newest_baseline,
    render_verify_markdown,
    verify_summary,
)


def main():
    module = RefusingModule(
        argument_spec=report_argument_spec(
            report_dir={"type": "path", "required": True},
            render_configured={"type": "bool", "default": False},
            expected_key_type={"type": "str", "default": ""},
            keep_verify_reports={"type": "int", "default": 0},
            accept_foreign_keys={"type": "bool", "default": False},
        ),
        supports_check_mode=True,
    )
    p = module.params
    host_dir = os.path.join(p["report_dir"], p["host"])
    report = assemble_verify_report(
        p["evidence"], environment=p["environment"], host=p["host"], generated_at=utc_iso(datetime.now(UTC)),
        baseline=newest_baseline(last_conversion(host_dir), last_clean_verification(host_dir)),
        render_configured=p["render_configured"],
        expected_key_type=p["expected_key_type"], accept_foreign_keys=p["accept_foreign_keys"],
        secrets=given_secrets(p), commands=p["commands"])
    pruned = [] if module.check_mode else prune_verify_reports(host_dir, p["keep_verify_reports"])
    failing = sum(1 for c in report["checks"] if c["status"] in ("drift", "error"))
    exit_with_report(module, report, render_verify_markdown(report), verify_summary(report), failing,
                     pruned=pruned)


if __name__ == "__main__":
    main()
