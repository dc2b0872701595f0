#!/usr/bin/python
"""Assemble the run report of a recovery; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run_report
short_description: Assemble the run report of a recovery
description:
  - Turns the public results the recovery's roles published (O(evidence), any part missing) into the run
    report - each step's status (done, skipped, failed, not reached), where the run stopped, the state it
    left (maintenance mode, conversion, the backup to restore from), key figures and the operator's next
    action - as a dict and as Markdown.
  - Writes nothing; returns C(changed=false), since reports are output, not managed state.
  - Every string of the result has each of O(secrets) replaced by C([redacted]).
options:
  evidence:
    description:
      - The keys C(findings) (C(investigate_result.findings)), C(render), C(resume), C(maintenance)
        (C(maintenance_mode_result)), C(backup) (C(backup_result) with C(path), C(level), C(manifest),
        C(gate_path), C(finished)), C(convert_plan), C(convert) (C(convert_keys_result)), C(alembic)
        (C(alembic_reset_result)), C(deploy), C(maintenance_check), C(health), C(frontend), C(smoke), C(logs)
        (C(app_deploy_result)), C(rotation) (C(credential_rotation_result)), C(rehearsal), C(gates),
        C(schema_after).
    type: dict
    required: true
  run_id:
    description: The run's id (its report folder name).
    type: str
    default: ""
  started_at:
    description: When the run started (ISO 8601 UTC); empty = the time the run id names.
    type: str
    default: ""
  in_check_mode:
    description: Whether the recovery ran under C(--check).
    type: bool
    default: false
  failure:
    description: Where the run failed, C({task, message}), as the playbook's rescue recorded it.
    type: dict
    default: {}
  backup_path:
    description: The backup directory whose C(manifest.json) SHA-256 the run report gives.
    type: path
attributes:
  check_mode:
    support: full
    description: Computes the same in check mode.
  diff_mode:
    support: none
extends_documentation_fragment: [report_module]
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Assemble the run report
  run_report:
    environment: "{{ recovery_environment }}"
    host: "{{ inventory_hostname }}"
    run_id: "{{ investigate_result.report_path | basename }}"
    evidence:
      findings: "{{ investigate_result.findings | default(none) }}"
    commands:
      recover: ansible-playbook playbooks/recover.yml -i inventories/production
      restore: ansible-playbook playbooks/restore.yml -i inventories/production -e restore_confirm=production
      restore_path: "-e restore_path="
    secrets: ["{{ render_api_key }}"]
  register: report
  no_log: true
"""

RETURN = r"""
report:
  description: The report as written to run-report.json.
  returned: always
  type: dict
markdown:
  description: The report as Markdown (run-report.md).
  returned: always
  type: str
summary:
  description: One line saying how it went.
  returned: always
  type: str
failing:
  description: Number of failed steps.
  returned: always
  type: int
"""

import os
from datetime import UTC, datetime

from ansible.module_utils.module_refusal import RefusingModule
from ansible.module_utils.pg_backup_store import sha256_file
from ansible.module_utils.report_module import exit_with_report, given_secrets, report_argument_spec
from ansible.module_utils.run_report import assemble_run_report
from ansible.module_utils.run_report_common import FAILED, utc_iso
from ansible.module_utils.run_report_markdown import render_run_markdown


def manifest_sha256(backup_path: str | None) -> str | None:
    """The SHA-256 of the backup's manifest.json, or None when there is none to read."""
    if not backup_path:
        return None
    try:
        return sha256_file(os.path.join(backup_path, "manifest.json"))
    except OSError:
        return None


def main():
    module = RefusingModule(
        argument_spec=report_argument_spec(
            run_id={"type": "str", "default": ""},
            started_at={"type": "str", "default": ""},
            in_check_mode={"type": "bool", "default": False},
            failure={"type": "dict", "default": {}},
            backup_path={"type": "path"},
        ),
        supports_check_mode=True,
    )
    p = module.params
    report = assemble_run_report(
        p["evidence"], environment=p["environment"], host=p["host"], run_id=p["run_id"],
        started_at=p["started_at"] or None, ended_at=utc_iso(datetime.now(UTC)), check_mode=p["in_check_mode"],
        failure=p["failure"], manifest_sha256=manifest_sha256(p["backup_path"]), secrets=given_secrets(p),
        commands=p["commands"])
    failing = sum(1 for s in report["steps"] if s["status"] == FAILED)
    summary = (f"{report['environment']}: recovery {report['outcome']}"
               + (f" at step {report['stopped_at']}" if report["stopped_at"] else ""))
    exit_with_report(module, report, render_run_markdown(report), summary, failing)


if __name__ == "__main__":
    main()
