#!/usr/bin/python
"""Refuse a risky change unless a verified backup of the database exists; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_backup_gate
short_description: Fail unless a verified backup of this database lets a risky change run
description:
  - Passes when the backup verified in this run (O(verified_path)) is of this database and
    recorded as verified at O(min_level) or stronger.
  - Otherwise passes when the newest backup of this database under O(backup_dir)/O(label) was
    verified at O(min_level), is younger than O(max_age_hours), and was taken of the same schema
    (its fingerprint - tables, columns, types, constraints, indexes, views, triggers, policies,
    functions - equals the live database's).
  - With O(recheck), the passing backup's checksums are verified again now.
  - The failure message says why each backup was refused and how to make one (O(remedy)).
  - In check mode no backup is taken, so O(planned_path), the dump this run would take and
    verify (the backup role's check-mode plan), stands for the backup verified in this run; the
    gate reports C(planned=true) and passes, as the real run would once that backup is verified.
  - Read-only; returns C(changed=false).
options:
  backup_dir:
    description: Where backups are kept.
    type: path
    required: true
  label:
    description: The app environment's folder under O(backup_dir).
    type: str
    required: true
  min_level:
    description: The weakest verification level accepted.
    type: str
    choices: [checksum, toc, restore]
    default: restore
  max_age_hours:
    description: How old a backup not verified in this run may be.
    type: float
    default: 24
  verified_path:
    description: The backup verified in this run (pg_verified_backup's C(path)); empty when none.
    type: str
    default: ""
  planned_path:
    description:
      - In check mode only, the backup this run would take and verify (the backup role publishes it
        as C(backup_result.planned_path)); ignored outside check mode.
    type: str
    default: ""
  recheck:
    description: Verify the passing backup's checksums again now.
    type: bool
    default: true
  environment:
    description: The environment's name (recovery_environment).
    type: str
    default: ""
  remedy:
    description: What the operator runs to make a backup that passes, ending the failure message; empty names none.
    type: str
    default: ""
extends_documentation_fragment: [postgres_connection]
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Refuse the conversion without a verified backup
  pg_backup_gate:
    database_url: "{{ recovery_database_url }}"
    backup_dir: /var/backups/app
    label: "{{ inventory_hostname }}"
    verified_path: "{{ backup_result.path | default('') }}"
    environment: "{{ recovery_environment }}"
    remedy: ansible-playbook playbooks/backup.yml -i inventories/production
  no_log: true
"""

RETURN = r"""
path:
  description: The backup that lets the change run.
  returned: success
  type: str
level:
  description: The level it was verified at.
  returned: success
  type: str
from_this_run:
  description: Whether it is the backup verified in this run.
  returned: success
  type: bool
backup:
  description: Summary of its manifest.
  returned: success
  type: dict
refused:
  description: Why other backups were not accepted.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.module_refusal import RefusingModule
from ansible.module_utils.pg_backup_database import live_fingerprint
from ansible.module_utils.pg_backup_manifest import identity_of, summary
from ansible.module_utils.pg_backup_policy import evaluate_gate, gate_message, list_backups
from ansible.module_utils.pg_backup_store import BackupError, utc_now
from ansible.module_utils.pg_connection import connection_argument_spec, ensure_psycopg2, resolve_connection


def main():
    argument_spec = connection_argument_spec() | {
        "backup_dir": {"type": "path", "required": True},
        "label": {"type": "str", "required": True},
        "min_level": {"type": "str", "choices": ["checksum", "toc", "restore"], "default": "restore"},
        "max_age_hours": {"type": "float", "default": 24.0},
        "verified_path": {"type": "str", "default": ""},
        "planned_path": {"type": "str", "default": ""},
        "recheck": {"type": "bool", "default": True},
        "environment": {"type": "str", "default": ""},
        "remedy": {"type": "str", "default": ""},
    }
    module = RefusingModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_psycopg2(module)
    p = module.params
    try:
        identity = identity_of(resolve_connection(p))
        passed, reasons = evaluate_gate(
            list_backups(p["backup_dir"], p["label"]), identity, live_fingerprint=live_fingerprint(p),
            min_level=p["min_level"], max_age_seconds=p["max_age_hours"] * 3600, now=utc_now(),
            this_run=p["verified_path"], recheck=p["recheck"])
    except (BackupError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    if passed is None and module.check_mode and p["planned_path"]:
        # The real run takes and verifies this backup before the gate, or stops there.
        module.exit_json(changed=False, path=p["planned_path"], level=p["min_level"], from_this_run=True,
                         planned=True, backup={}, refused=reasons)
    if passed is None:
        module.fail_json(msg=gate_message(identity, p["remedy"], reasons, p["min_level"]),
                         refused=reasons)
    module.exit_json(changed=False, path=passed["path"], level=passed["level"],
                     from_this_run=passed["from_this_run"], planned=False, backup=summary(passed["manifest"]),
                     refused=reasons)


if __name__ == "__main__":
    main()
