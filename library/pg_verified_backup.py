#!/usr/bin/python
"""Take a pg_dump backup with a streaming SHA-256 manifest; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_verified_backup
short_description: Dump a PostgreSQL database with pg_dump and write a checksummed manifest beside it
description:
  - Runs C(pg_dump) in custom format (C(-Fc)) by default, or directory format (C(-Fd -j N)),
    into O(backup_dir)/O(label)/O(backup_id)/ on the host running the module (the control node).
  - Custom format is streamed through the module, which hashes (SHA-256) and writes each chunk as
    it arrives, so the checksum is taken while the bytes are written, never by a second read.
    Directory format files are written by pg_dump's parallel workers and hashed once it finished.
  - A REPEATABLE READ transaction exports its snapshot, C(pg_dump --snapshot) dumps exactly that
    snapshot, and the same transaction counts every table's rows exactly while pg_dump runs.
  - C(manifest.json) records files, sizes and SHA-256, pg_dump and server versions, database,
    start and end time, TOC entry count, exact per-table row counts, object counts and a schema
    fingerprint, and a checksum over itself. It never holds a credential.
  - Idempotent per O(backup_id) - when that backup of this database exists, nothing is dumped
    and C(changed=false); O(force) dumps again and replaces it only once the new dump succeeded.
  - The password reaches pg_dump only through its environment (C(PGPASSWORD)), never its argv.
  - Directories are created 0700 and files 0600. An existing O(backup_dir) (or label folder) is
    never chmod-ed - it is refused, naming its mode and owner, unless it is owned by this user and
    already private (no group or other permissions).
  - A dump is written into a hidden C(.partial) directory locked (flock) by its writer and renamed
    into place once complete. Partials of this database that no live run holds locked (a killed
    run's leftovers, older than a minute) are removed first.
options:
  backup_dir:
    description: Where backups are kept (on the control node); created 0700, or an existing private one of this user.
    type: path
    required: true
  label:
    description: A folder per app environment under O(backup_dir), usually the inventory hostname.
    type: str
    required: true
  backup_id:
    description: The backup's folder name; one per run (the run id).
    type: str
    required: true
  format:
    description: pg_dump archive format.
    type: str
    choices: [custom, directory]
    default: custom
  jobs:
    description: Parallel pg_dump workers (directory format only).
    type: int
    default: 1
  compress:
    description: pg_dump C(--compress) value (for example C(6), C(zstd:3) on pg_dump 16+); empty for pg_dump's default.
    type: str
    default: ""
  force:
    description: Dump again even if this O(backup_id) already holds a backup.
    type: bool
    default: false
  pg_bin_dir:
    description: Directory of pg_dump and pg_restore; default the newest C(/usr/lib/postgresql/*/bin), then PATH.
    type: path
extends_documentation_fragment: [postgres_connection]
attributes:
  check_mode:
    support: full
    description: Reads the catalog and reports what would be dumped and its estimated size; writes nothing.
  diff_mode:
    support: none
requirements: [psycopg2, pg_dump and pg_restore at least as new as the server]
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Dump the database before the conversion
  pg_verified_backup:
    database_url: "{{ recovery_database_url }}"
    backup_dir: /var/backups/app
    label: "{{ inventory_hostname }}"
    backup_id: "20250101T000000Z"
  no_log: true
  register: dump
"""

RETURN = r"""
path:
  description: The backup's directory.
  returned: always
  type: str
manifest_path:
  description: Its manifest.json (absent in check mode when nothing exists yet).
  returned: success
  type: str
backup:
  description: Summary of the manifest (id, format, files, bytes, TOC entries, tables, rows, fingerprint, times).
  returned: when a backup exists or was made
  type: dict
verified_levels:
  description: Verification levels already recorded as passed for this exact manifest.
  returned: always
  type: list
  elements: str
removed_partials:
  description: Leftover partial dumps of this database (killed runs) removed before dumping.
  returned: success, not in check mode
  type: list
  elements: str
plan:
  description: >-
    In check mode, what would be dumped, its estimated (uncompressed, index-free) size, and the
    stale partials that would be removed.
  returned: check mode
  type: dict
"""

import os

from ansible.module_utils.module_refusal import RefusingModule
from ansible.module_utils.pg_backup_dump import plan_backup, take_backup
from ansible.module_utils.pg_backup_manifest import load_manifest, passed_levels, summary
from ansible.module_utils.pg_backup_store import MANIFEST, BackupError
from ansible.module_utils.pg_client_programs import ToolError
from ansible.module_utils.pg_connection import connection_argument_spec, ensure_psycopg2


def main():
    argument_spec = connection_argument_spec() | {
        "backup_dir": {"type": "path", "required": True},
        "label": {"type": "str", "required": True},
        "backup_id": {"type": "str", "required": True},
        "format": {"type": "str", "choices": ["custom", "directory"], "default": "custom"},
        "jobs": {"type": "int", "default": 1},
        "compress": {"type": "str", "default": ""},
        "force": {"type": "bool", "default": False},
        "pg_bin_dir": {"type": "path"},
    }
    module = RefusingModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_psycopg2(module)
    p = module.params
    path = os.path.join(p["backup_dir"], p["label"], p["backup_id"])
    try:
        if module.check_mode:
            plan = plan_backup(p, backup_dir=p["backup_dir"], label=p["label"], backup_id=p["backup_id"],
                               force=p["force"])
            result = {"changed": plan["would_dump"] or bool(plan["stale_partials"]), "path": plan["path"],
                      "plan": plan, "verified_levels": []}
            if not plan["would_dump"]:
                manifest = load_manifest(plan["path"])
                result |= {"manifest_path": os.path.join(plan["path"], MANIFEST), "backup": summary(manifest),
                           "verified_levels": passed_levels(plan["path"], manifest)}
            module.exit_json(**result)
        done = take_backup(p, backup_dir=p["backup_dir"], label=p["label"], backup_id=p["backup_id"],
                           fmt=p["format"], jobs=p["jobs"], compress=p["compress"], bin_dir=p["pg_bin_dir"],
                           force=p["force"])
    except (BackupError, ToolError, ValueError) as exc:
        module.fail_json(msg=str(exc), path=path)
    module.exit_json(
        changed=done["changed"], path=done["path"],
        manifest_path=os.path.join(done["path"], MANIFEST),
        backup=summary(done["manifest"]),
        verified_levels=passed_levels(done["path"], done["manifest"]),
        removed_partials=done["removed_partials"],
    )


if __name__ == "__main__":
    main()
