#!/usr/bin/python
"""Ansible module: prove a rotation's leaked Render Postgres users are gone and their password dead."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: credential_rotation_verify
short_description: Prove the leaked users of a Render Postgres instance are gone
description:
  - The last step of the C(credential_rotation) role. Reads Render, never changes it (C(changed=false)).
  - Fails when one of O(users) is still listed, when the default user is not O(new_user), or when
    O(database_url) logs in as one of O(users) and a login with it (with O(test_login)) is not refused
    for its password. Returns what was proven and what the operator must do now.
options:
  users:
    description: The users that must be gone.
    type: list
    elements: str
    default: []
  new_user:
    description: The user the services moved to, which must be the default.
    type: str
  database_url:
    description: The run's own database URL (recovery_database_url), as it was before the rotation. Secret.
    type: str
  test_login:
    description: Prove O(database_url)'s leaked password is refused.
    type: bool
    default: true
  database_url_changed:
    description: Whether the run's database URL moved to the new user (the vault needs it).
    type: bool
    default: false
  vault_file:
    description: The vault file holding vault_recovery_database_url, named in the operator's next action;
      empty - "your inventory's vault file".
    type: str
    default: ""
extends_documentation_fragment: [credential_rotation, credential_rotation.read_only, render_api]
author: render-key-recovery
"""

EXAMPLES = r"""
- name: Prove the leaked users are gone and the new user is the default
  credential_rotation_verify:
    postgres: "{{ render_postgres_id }}"
    users: "{{ plan.plan.leaked_users }}"
    new_user: "{{ plan.plan.new_user }}"
    database_url: "{{ recovery_database_url }}"
  no_log: true
  register: verified
"""

RETURN = r"""
actions:
  description: What was proven and what the operator must do now (never a secret).
  returned: success
  type: list
  elements: str
credentials:
  description: The users as last listed (names, default, openConnections).
  returned: success
  type: list
"""

from ansible.module_utils.credential_rotation import (
    RotationError,
    default_user,
    leaked_login_proof,
    operator_actions,
    still_listed,
    url_username,
)
from ansible.module_utils.credential_rotation_module import rotation_argument_spec, run_rotation_module


def verify(module, client, postgres_id):
    params = module.params
    credentials = client.list_credentials(postgres_id)
    left = still_listed(credentials, params["users"])
    if left:
        raise RotationError(f"users {', '.join(left)} are still listed on postgres {postgres_id} after their delete")
    if params["new_user"] and default_user(credentials) != params["new_user"]:
        raise RotationError(f"the default user of postgres {postgres_id} is {default_user(credentials)}, not "
                            f"{params['new_user']}: another user was created during the run")
    proof = []
    leaked_login = url_username(params["database_url"])
    if params["test_login"] and leaked_login in params["users"]:
        proof.append(leaked_login_proof(leaked_login, login_error(module, params["database_url"])))
    actions = operator_actions(rotated=True, database_url_changed=params["database_url_changed"],
                               new_user=params["new_user"], deleted=params["users"],
                               vault_file=params["vault_file"], proof=proof)
    return {"credentials": credentials, "actions": actions}


def login_error(module, url):
    """The server's refusal of a login with ``url``, or None when it logs in."""
    from ansible.module_utils.pg_connection import connection_params, ensure_psycopg2, psycopg2

    ensure_psycopg2(module)
    try:
        psycopg2.connect(**connection_params({"database_url": url, "connect_timeout": 10})).close()
    except psycopg2.Error as exc:  # libpq's text names the user, never the password
        return str(exc)
    return None


def main():
    spec = rotation_argument_spec(
        users={"type": "list", "elements": "str", "default": []},
        new_user={"type": "str"},
        database_url={"type": "str", "no_log": True},
        test_login={"type": "bool", "default": True},
        database_url_changed={"type": "bool", "default": False},
        vault_file={"type": "str", "default": ""},
    )
    run_rotation_module(spec, verify)


if __name__ == "__main__":
    main()
