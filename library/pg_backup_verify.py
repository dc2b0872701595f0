#!/usr/bin/python
"""Verify a pg_dump backup against its manifest; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_backup_verify
short_description: Verify a backup made by pg_verified_backup at level checksum, toc or restore
description:
  - C(checksum) - the manifest parses and matches its own checksum, is for the given database
    (when a connection is given), and every file exists with its size and SHA-256; no file is
    missing and none is extra. Every problem found is reported.
  - C(toc) - also C(pg_restore --list) reads the archive and its entry count equals the manifest's.
  - C(restore) - also restores into a new scratch database on O(scratch_url) (a role that may
    create databases, never the backed-up server) with C(--single-transaction --exit-on-error),
    compares every table's exact row count, the object counts and the schema fingerprint with the
    manifest, and drops the scratch database. pg_restore must be at least the dump's major version
    and the scratch server at least the source server's.
  - Each result is recorded in the backup's C(verifications.json). The checksum is always verified
    again; a C(restore) already recorded as passed for this exact manifest is reused (O(reuse)).
  - Never changes the backed-up database; returns C(changed=false).
options:
  path:
    description: The backup's directory (the C(path) returned by pg_verified_backup).
    type: path
    required: true
  level:
    description: How far to verify.
    type: str
    choices: [checksum, toc, restore]
    default: restore
  scratch_url:
    description: A server (URL of a superuser or CREATEDB role, any existing database) for C(restore).
    type: str
  reuse:
    description: Reuse a restore verification already recorded for this exact manifest.
    type: bool
    default: true
  run_id:
    description: Recorded with the result.
    type: str
    default: ""
  pg_bin_dir:
    description: Directory of pg_restore; default the newest C(/usr/lib/postgresql/*/bin), then PATH.
    type: path
notes:
  - The connection options are only used to check that the manifest is for this database; the
    module does not connect to it.
extends_documentation_fragment: [postgres_connection]
attributes:
  check_mode:
    support: partial
    details: Runs C(checksum) and C(toc), and C(restore) only when a recorded one is reused; records nothing.
  diff_mode:
    support: none
requirements: [psycopg2, pg_restore]
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Verify the backup by restoring it into a scratch database
  pg_backup_verify:
    path: "{{ dump.path }}"
    level: restore
    database_url: "{{ recovery_database_url }}"
    scratch_url: "{{ scratch_url }}"
  no_log: true
"""

RETURN = r"""
verified:
  description: The level verified (or, in check mode, as far as it went).
  returned: always
  type: str
checked:
  description: Levels checked now.
  returned: always
  type: list
  elements: str
reused:
  description: Levels taken from an earlier recorded verification of the same manifest.
  returned: always
  type: list
  elements: str
restore:
  description: Restore details (tables and rows checked, object counts, seconds).
  returned: when a restore ran
  type: dict
backup:
  description: Summary of the manifest.
  returned: success
  type: dict
"""

from ansible.module_utils.module_refusal import RefusingModule
from ansible.module_utils.pg_backup_manifest import identity_of, load_manifest, passed_levels, summary
from ansible.module_utils.pg_backup_store import BackupError
from ansible.module_utils.pg_backup_verification import verify_backup
from ansible.module_utils.pg_client_programs import ToolError
from ansible.module_utils.pg_connection import connection_argument_spec, ensure_psycopg2, resolve_connection


def main():
    argument_spec = connection_argument_spec() | {
        "path": {"type": "path", "required": True},
        "level": {"type": "str", "choices": ["checksum", "toc", "restore"], "default": "restore"},
        "scratch_url": {"type": "str", "no_log": True},
        "reuse": {"type": "bool", "default": True},
        "run_id": {"type": "str", "default": ""},
        "pg_bin_dir": {"type": "path"},
    }
    module = RefusingModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_psycopg2(module)
    p = module.params
    level = p["level"]
    try:
        identity = None
        if p["database_url"] or p["login_host"]:
            identity = identity_of(resolve_connection(p))
        scratch = ({"database_url": p["scratch_url"], "connect_timeout": p["connect_timeout"]}
                   if p["scratch_url"] else None)
        if module.check_mode and level == "restore" and (
                "restore" not in passed_levels(p["path"], load_manifest(p["path"]))):
            level = "toc"  # check mode creates no scratch database; a recorded restore is reused
        result = verify_backup(p["path"], level, identity=identity, scratch=scratch,
                               bin_dir=p["pg_bin_dir"], run_id=p["run_id"], reuse=p["reuse"],
                               record=not module.check_mode)
    except (BackupError, ToolError, ValueError) as exc:
        module.fail_json(msg=str(exc), path=p["path"])
    module.exit_json(changed=False, verified=level, checked=result["checked"], reused=result["reused"],
                     restore=result.get("restore"), backup=summary(result["manifest"]), path=p["path"])


if __name__ == "__main__":
    main()
