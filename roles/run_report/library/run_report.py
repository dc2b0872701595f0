#!/usr/bin/python
"""Assemble a recovery run report or a verification report; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run_report
short_description: Assemble the run report of a recovery, or the report of a scheduled verification
description:
  - With O(kind=run), turns what the recovery's roles left (O(evidence), any part missing) into the run
    report - each step's status (done, skipped, failed, not reached), where the run stopped, the state it
    left (maintenance mode, conversion, the backup to restore from), key figures and the operator's next
    action - as a dict and as Markdown.
  - With O(kind=verify), turns the read-only probes of C(playbooks/verify.yml) into the verification
    report, comparing the foreign keys with the newest known-good record under O(report_dir)/O(host)/
    (a successful conversion's C(conversion.json) or C(run-report.json), or a clean C(verify-*.json)),
    and lists every drift.
  - Writes nothing except, with O(kind=verify) and O(keep_verify_reports), deleting the oldest
    C(verify-*) reports of the host beyond that number. Returns C(changed=false), since reports are
    output, not managed state.
  - Every string of the result has each of O(secrets) replaced by C([redacted]).
options:
  kind:
    description: Which report.
    type: str
    required: true
    choices: [run, verify]
  evidence:
    description:
      - For O(kind=run) the keys C(findings), C(render), C(resume), C(maintenance), C(backup) (C(path), C(level),
        C(manifest), C(gate_path)), C(convert_plan), C(convert), C(alembic), C(deploy), C(maintenance_check),
        C(health), C(frontend), C(smoke), C(logs) (the app_deploy role's C(app_deploy_result)), C(rotation) (the
        credential_rotation role's C(credential_rotation_result)).
      - For O(kind=verify) the keys C(findings), C(findings_error), C(plan), C(gate), C(service), C(health).
    type: dict
    required: true
  environment:
    description: The environment's name (recovery_environment).
    type: str
    required: true
  inventory:
    description: The C(-i) option(s) of the commands in the next action (the run's inventory); empty says
      C(-i <your inventory>).
    type: str
    default: ""
  host:
    description: The inventory host.
    type: str
    required: true
  run_id:
    description: The run's id (its report folder name). O(kind=run) only.
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
  protected_environments:
    description: Environments whose restore needs C(-e restore_confirm=<environment>).
    type: list
    elements: str
    default: [production]
  backup_path:
    description: The backup directory whose C(manifest.json) SHA-256 the run report gives.
    type: path
  report_dir:
    description: The reports directory; O(kind=verify) reads the runs in O(report_dir)/O(host)/.
    type: path
  render_configured:
    description: Whether the run uses Render (recovery_render; O(kind=verify)); false skips maintenance and health.
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
- name: Assemble the run report
  run_report:
    kind: run
    environment: "{{ recovery_environment }}"
    host: "{{ inventory_hostname }}"
    run_id: "{{ investigate_report_path | basename }}"
    evidence:
      findings: "{{ investigate_findings | default(none) }}"
    secrets: ["{{ render_api_key }}"]
  register: report
  no_log: true
"""

RETURN = r"""
report:
  description: The report as written to run-report.json or verify-<timestamp>.json.
  returned: always
  type: dict
markdown:
  description: The report as Markdown.
  returned: always
  type: str
summary:
  description: One line saying how it went (for O(kind=verify), every drift).
  returned: always
  type: str
failing:
  description: Number of failed steps (run) or drifted or unverifiable checks (verify).
  returned: always
  type: int
pruned:
  description: Verify reports deleted by O(keep_verify_reports).
  returned: always
  type: list
  elements: str
"""

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.run_report import (  # noqa: E402
    FAILED,
    assemble_run_report,
    assemble_verify_report,
    conversion_record,
    is_run_dir_name,
    newest_baseline,
    render_run_markdown,
    render_verify_markdown,
    utc_iso,
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


def _sha256(path: str) -> str | None:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
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
            "kind": {"type": "str", "required": True, "choices": ["run", "verify"]},
            "evidence": {"type": "dict", "required": True},
            "environment": {"type": "str", "required": True},
            "inventory": {"type": "str", "default": ""},
            "host": {"type": "str", "required": True},
            "run_id": {"type": "str", "default": ""},
            "started_at": {"type": "str", "default": ""},
            "in_check_mode": {"type": "bool", "default": False},
            "failure": {"type": "dict", "default": {}},
            "protected_environments": {"type": "list", "elements": "str", "default": ["production"]},
            "backup_path": {"type": "path"},
            "report_dir": {"type": "path"},
            "render_configured": {"type": "bool", "default": False},
            "expected_key_type": {"type": "str", "default": ""},
            "keep_verify_reports": {"type": "int", "default": 0},
            "accept_foreign_keys": {"type": "bool", "default": False},
            "secrets": {"type": "list", "elements": "str", "default": [], "no_log": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    now = utc_iso(datetime.now(UTC))
    secrets = [s for s in p["secrets"] if s]
    if p["kind"] == "run":
        manifest_sha256 = _sha256(os.path.join(p["backup_path"], "manifest.json")) if p["backup_path"] else None
        report = assemble_run_report(
            p["evidence"], environment=p["environment"], host=p["host"], run_id=p["run_id"],
            started_at=p["started_at"] or None, ended_at=now, check_mode=p["in_check_mode"],
            failure=p["failure"], protected_environments=p["protected_environments"],
            manifest_sha256=manifest_sha256, secrets=secrets, inventory=p["inventory"])
        failing = sum(1 for s in report["steps"] if s["status"] == FAILED)
        summary = (f"{report['environment']}: recovery {report['outcome']}"
                   + (f" at step {report['stopped_at']}" if report["stopped_at"] else ""))
        module.exit_json(changed=False, report=report, markdown=render_run_markdown(report), summary=summary,
                         failing=failing, pruned=[])

    if not p["report_dir"]:
        module.fail_json(msg="report_dir is required with kind=verify")
    host_dir = os.path.join(p["report_dir"], p["host"])
    report = assemble_verify_report(
        p["evidence"], environment=p["environment"], host=p["host"], generated_at=now,
        baseline=newest_baseline(last_conversion(host_dir), last_clean_verification(host_dir)),
        render_configured=p["render_configured"],
        expected_key_type=p["expected_key_type"], accept_foreign_keys=p["accept_foreign_keys"], secrets=secrets,
        inventory=p["inventory"])
    pruned = [] if module.check_mode else prune_verify_reports(host_dir, p["keep_verify_reports"])
    failing = sum(1 for c in report["checks"] if c["status"] in ("drift", "error"))
    module.exit_json(changed=False, report=report, markdown=render_verify_markdown(report),
                     summary=verify_summary(report), failing=failing, pruned=pruned)


if __name__ == "__main__":
    main()
