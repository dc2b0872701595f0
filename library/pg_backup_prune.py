#!/usr/bin/python
"""Retention for verified backups; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_backup_prune
short_description: Keep the newest N verified backups of a database and delete the rest
description:
  - Among the backups of this database under O(backup_dir)/O(label) (ordered by their manifest's
    end time), only those that passed verification count toward O(keep), so failing runs never
    push a good backup out.
  - Kept - every path in O(protect), the newest O(keep) verified backups, the newest
    restore-verified one (even beyond O(keep)), and never-verified backups newer than the newest
    verified one (a run may be about to verify it).
  - Deleted - older verified backups, backups whose verification only ever failed, and
    never-verified backups older than the newest verified one.
  - Deletes nothing while no backup of this database passed verification. Never touches backups of
    another database, directories without an intact manifest, or a dump in progress.
  - The connection options only name the database; the module does not connect.
options:
  backup_dir:
    description: Where backups are kept.
    type: path
    required: true
  label:
    description: The app environment's folder under O(backup_dir).
    type: str
    required: true
  keep:
    description: How many verified backups of this database to keep (at least 1).
    type: int
    default: 5
  protect:
    description: Backup directories never deleted (the one this run depends on).
    type: list
    elements: path
    default: []
extends_documentation_fragment: [postgres_connection]
attributes:
  check_mode:
    support: full
    description: Reports what would be deleted.
  diff_mode:
    support: none
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Keep the five newest verified backups, never this run's
  pg_backup_prune:
    database_url: "{{ recovery_database_url }}"
    backup_dir: /var/backups/app
    label: "{{ inventory_hostname }}"
    keep: 5
    protect: ["{{ dump.path }}"]
  no_log: true
"""

RETURN = r"""
kept:
  description: Backup directories kept.
  returned: always
  type: list
  elements: str
deleted:
  description: Backup directories deleted (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
reasons:
  description: Per backup directory, why it was kept or deleted.
  returned: always
  type: dict
"""

from ansible.module_utils.module_refusal import RefusingModule
from ansible.module_utils.pg_backup_manifest import identity_of
from ansible.module_utils.pg_backup_policy import prune
from ansible.module_utils.pg_backup_store import BackupError
from ansible.module_utils.pg_connection import connection_argument_spec, resolve_connection


def main():
    argument_spec = connection_argument_spec() | {
        "backup_dir": {"type": "path", "required": True},
        "label": {"type": "str", "required": True},
        "keep": {"type": "int", "default": 5},
        "protect": {"type": "list", "elements": "path", "default": []},
    }
    module = RefusingModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    try:
        result = prune(p["backup_dir"], p["label"], identity_of(resolve_connection(p)), p["keep"],
                       p["protect"], check_mode=module.check_mode)
    except (BackupError, ValueError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=bool(result["deleted"]), **result)


if __name__ == "__main__":
    main()
