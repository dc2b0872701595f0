#!/usr/bin/python
"""Rehearse a key conversion on a scratch restore of a verified backup; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_convert_keys_rehearsal
short_description: Run a key conversion on a scratch restore of a verified backup before the real one
description:
  - Plans the conversion on the live database (read-only), restores the backup at O(backup_path) into a new
    database on the scratch server O(scratch_url) (one transaction, checksums verified first), plans the same
    request there and refuses when the two plans differ (columns, FKs, views, policies, triggers, rules,
    refusals), runs the conversion there for real and checks that a second plan is empty.
  - A plan that would be refused, fail or roll back on the live database fails here first, on a copy, with the
    same message. A success returns the measured duration to expect for the real run.
  - The scratch database is dropped whatever happens; the live database is only read, so the module never
    reports a change.
  - The restore is made without owners and privileges (C(--no-owner --no-privileges)), so the rehearsal does not
    exercise the re-granting of privileges, and it runs as the scratch server's role. Where the scratch server
    lacks the live database's collation, the scratch database uses C(C) and the measured index builds are faster
    than the real ones (returned as RV(scratch_locale) beside RV(live_locale)).
options:
  backup_path:
    description: The verified backup's directory (the backup role's C(backup_result.gate_path)).
    type: path
    required: true
  scratch_url:
    description: A URL of a scratch server whose role may create databases, never the live server.
    type: str
    required: true
  pg_bin_dir:
    description: Directory of pg_restore; default the newest C(/usr/lib/postgresql/*/bin), then PATH.
    type: path
extends_documentation_fragment: [postgres_connection, key_conversion]
attributes:
  check_mode:
    support: full
    description: Plans on the live database and reports what would be rehearsed; restores nothing.
  diff_mode:
    support: none
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Rehearse the conversion on a scratch restore of the gate's backup
  pg_convert_keys_rehearsal:
    database_url: "{{ recovery_database_url }}"
    backup_path: "{{ backup_result.gate_path }}"
    scratch_url: "{{ scratch.admin_url }}"
  no_log: true
  register: rehearsal
"""

RETURN = r"""
rehearsed:
  description: Whether the conversion ran on a scratch restore (false in check mode).
  returned: always
  type: bool
plan:
  description: The live database's plan summary (as pg_convert_keys returns it).
  returned: always
  type: dict
seconds:
  description: How long the conversion took on the scratch restore.
  returned: when rehearsed
  type: float
timings:
  description: Its seconds per phase, exclusive_lock included.
  returned: when rehearsed
  type: dict
restore_seconds:
  description: How long the restore into the scratch database took.
  returned: when rehearsed
  type: float
scratch_locale:
  description: The scratch database's collation.
  returned: when rehearsed
  type: str
live_locale:
  description: The live database's collation.
  returned: when rehearsed
  type: str
"""

from ansible.module_utils.key_conversion_options import (
    conversion_argument_spec,
    request_from_params,
    run_options_from_params,
)
from ansible.module_utils.key_conversion_rehearsal import RehearsalError, rehearse
from ansible.module_utils.key_conversion_run import plan_only
from ansible.module_utils.module_refusal import RefusingModule, refuse
from ansible.module_utils.pg_connection import (
    ConnectionFailure,
    connect,
    connection_argument_spec,
    ensure_psycopg2,
)


def main():
    argument_spec = connection_argument_spec() | conversion_argument_spec() | {
        "backup_path": {"type": "path", "required": True},
        "scratch_url": {"type": "str", "required": True, "no_log": True},
        "pg_bin_dir": {"type": "path"},
    }
    module = RefusingModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_psycopg2(module)
    p = module.params
    try:
        request = request_from_params(p)
        conn = connect(p)
    except (ValueError, ConnectionFailure) as exc:
        refuse(module, str(exc))
    try:
        if module.check_mode:
            plan = plan_only(conn, request)["plan"].summary()
            module.exit_json(changed=False, rehearsed=False, plan=plan)
        try:
            result = rehearse(conn, p["backup_path"],
                              {"database_url": p["scratch_url"], "connect_timeout": p["connect_timeout"]}, request,
                              options=run_options_from_params(p), bin_dir=p["pg_bin_dir"])
        except RehearsalError as exc:
            refuse(module, f"rehearsal failed, nothing live changed: {exc}")
        module.exit_json(changed=False, rehearsed=True, **result)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
