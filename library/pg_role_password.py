#!/usr/bin/python
"""Ansible module: rotate the password of the PostgreSQL role a database URL logs in as."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_role_password
short_description: Rotate a self-managed PostgreSQL role's leaked password with ALTER ROLE
description:
  - Logs in with O(database_url) (the role whose password leaked, with that password, over SSL) and, when
    that password is one of O(leaked_password_sha256), sets a new strong random password with
    C(ALTER ROLE ... PASSWORD) given as a SCRAM-SHA-256 verifier computed on the client
    (module_utils/pg_scram.py); the plaintext never goes to the server nor into its log.
  - Then proves the new password logs in as the role over SSL and the old one is rejected with an
    authentication error. A failed proof puts the old password back and fails.
  - A password that is not a leaked one has nothing to rotate (C(changed=false)); so does a re-run once the
    vault holds the new URL. An old password that is rejected fails, saying to update the vault.
  - Not for Render-managed databases (Render has no password change; see the credential_rotation role).
options:
  database_url:
    description:
      - C(postgresql://role:password@host:port/db); C(sslmode) must be require, verify-ca or verify-full
        (the default when the URL names none is require). Never logged.
    type: str
    required: true
  leaked_password_sha256:
    description: SHA-256 fingerprints (hex) of leaked passwords, never the passwords.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Logs in with the old password (read-only) and reports which role would be rotated.
  diff_mode:
    support: none
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Rotate the app role's leaked password
  pg_role_password:
    database_url: "{{ recovery_database_url }}"
    leaked_password_sha256: ["<64 hex digits>"]
  register: rotated
  no_log: true
"""

RETURN = r"""
status:
  description: C(rotated), C(planned) (check mode) or C(nothing_to_do).
  returned: always
  type: str
role:
  description: The role the URL logs in as.
  returned: always
  type: str
where:
  description: host:port/database of the URL.
  returned: always
  type: str
database_url:
  description: The URL with the new password. Secret.
  returned: when rotated
  type: str
password:
  description: The new password. Secret.
  returned: when rotated
  type: str
proof:
  description: new_password_logs_in, ssl, old_password_rejected.
  returned: when rotated
  type: dict
"""

from ansible.module_utils.module_refusal import RefusingModule
from ansible.module_utils.pg_connection import connection_params, ensure_psycopg2, psycopg2
from ansible.module_utils.role_password import RolePasswordError, SelfRotation, plan


def _connect(url):
    # connection_params: sslmode require unless the URL says otherwise (libpq alone would "prefer").
    return psycopg2.connect(**connection_params({"database_url": url, "connect_timeout": 10}))


def main():
    module = RefusingModule(
        argument_spec={
            "database_url": {"type": "str", "required": True, "no_log": True},
            "leaked_password_sha256": {"type": "list", "elements": "str", "default": [], "no_log": False},
        },
        supports_check_mode=True,
    )
    ensure_psycopg2(module)
    from psycopg2 import sql

    url = module.params["database_url"]
    try:
        todo = plan(url, module.params["leaked_password_sha256"])
        result = {"role": todo["role"], "where": todo["where"]}
        if not todo["rotate"]:
            module.exit_json(changed=False, status="nothing_to_do", **result)
        rotation = SelfRotation(url, _connect, sql)
        try:
            rotation.open()  # in check mode too: the old password must still log in
            if module.check_mode:
                module.exit_json(changed=True, status="planned", **result)
            result.update(rotation.rotate())
        finally:
            rotation.close()
    except RolePasswordError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=True, status="rotated", **result)


if __name__ == "__main__":
    main()
