#!/usr/bin/python
"""Restore a verified backup into its database; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_verified_restore
short_description: Restore a pg_verified_backup backup into the database in one transaction
description:
  - Verifies the backup's checksums first (and that its manifest is for this database unless
    O(allow_other_database)), checks pg_restore and the server are at least the dump's major versions.
  - Restores in one transaction - C(pg_restore --single-transaction --file=-) writes the restore script
    (with C(--clean --if-exists) by default, so the dumped objects are replaced atomically; objects
    created after the backup stay) and C(psql -v ON_ERROR_STOP=1) runs it, with a check inserted just
    before the final C(COMMIT) that compares every table's exact row count with the manifest. A
    difference, like any error, rolls everything back and the message names every table that differs.
  - The COMMIT is only sent once pg_restore exited successfully; on any failure the database is left as it was.
  - Without O(path), the newest backup of this database verified at level C(restore) is used, else the
    newest verified at any level (its level is returned); a backup that never passed verification is
    never chosen, and the module refuses when none did.
  - Refusing production without a confirmation is the role's job (C(tasks_from=restore)).
options:
  path:
    description: >-
      The backup's directory; empty means the newest verified backup of this database under
      O(backup_dir)/O(label).
    type: str
    default: ""
  backup_dir:
    description: Where backups are kept (used when O(path) is empty).
    type: path
  label:
    description: The app environment's folder under O(backup_dir).
    type: str
  clean:
    description: Drop the dumped objects before recreating them (C(--clean --if-exists)).
    type: bool
    default: true
  no_owner:
    description: Do not restore ownership (C(--no-owner)); objects belong to the connecting role.
    type: bool
    default: false
  allow_other_database:
    description: Restore a backup whose manifest names another database.
    type: bool
    default: false
  pg_bin_dir:
    description: Directory of pg_restore; default the newest C(/usr/lib/postgresql/*/bin), then PATH.
    type: path
  remedy:
    description: What the operator can do when no backup passed verification, ending that refusal.
    type: str
    default: ""
extends_documentation_fragment: [postgres_connection]
attributes:
  check_mode:
    support: full
    description: Verifies the checksums and versions and reports what would be restored.
  diff_mode:
    support: none
requirements: [psycopg2, pg_restore, psql]
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Restore the newest backup
  pg_verified_restore:
    database_url: "{{ recovery_database_url }}"
    backup_dir: /var/backups/app
    label: "{{ inventory_hostname }}"
    remedy: Take and verify one (ansible-playbook playbooks/backup.yml).
  no_log: true
"""

RETURN = r"""
path:
  description: The backup restored.
  returned: always
  type: str
verified_level:
  description: When O(path) was empty, the best level the chosen backup passed.
  returned: when O(path) is empty
  type: str
skipped_newer:
  description: When O(path) was empty, newer backups passed over (not verified at level restore, or not verified).
  returned: when O(path) is empty
  type: list
  elements: str
restored:
  description: Whether the restore committed (false in check mode).
  returned: success
  type: bool
tables_checked:
  description: Tables whose row counts were compared with the manifest, before the COMMIT.
  returned: when restored
  type: int
rows_checked:
  description: Rows counted.
  returned: when restored
  type: int
extra_tables:
  description: Tables in the database that the backup does not contain (created after it; left alone).
  returned: when restored
  type: list
  elements: str
"""

from ansible.module_utils.module_refusal import RefusingModule
from ansible.module_utils.pg_backup_manifest import identity_of
from ansible.module_utils.pg_backup_policy import restore_candidate
from ansible.module_utils.pg_backup_restore import restore_backup
from ansible.module_utils.pg_backup_store import BackupError
from ansible.module_utils.pg_client_programs import ToolError
from ansible.module_utils.pg_connection import connection_argument_spec, ensure_psycopg2, resolve_connection


def main():
    argument_spec = connection_argument_spec() | {
        "path": {"type": "str", "default": ""},
        "backup_dir": {"type": "path"},
        "label": {"type": "str"},
        "clean": {"type": "bool", "default": True},
        "no_owner": {"type": "bool", "default": False},
        "allow_other_database": {"type": "bool", "default": False},
        "pg_bin_dir": {"type": "path"},
        "remedy": {"type": "str", "default": ""},
    }
    module = RefusingModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("path", "", ("backup_dir", "label"))])
    ensure_psycopg2(module)
    p = module.params
    path, chosen = p["path"], {}
    try:
        if not path:
            candidate = restore_candidate(p["backup_dir"], p["label"], identity_of(resolve_connection(p)),
                                          p["remedy"])
            path = candidate["path"]
            chosen = {"verified_level": candidate["level"], "skipped_newer": candidate["skipped_newer"]}
        result = restore_backup(p, path, bin_dir=p["pg_bin_dir"], clean=p["clean"], no_owner=p["no_owner"],
                                allow_other_database=p["allow_other_database"], check_mode=module.check_mode)
    except (BackupError, ToolError, ValueError) as exc:
        module.fail_json(msg=str(exc), path=path)
    module.exit_json(changed=True, **result, **chosen)


if __name__ == "__main__":
    main()
