#!/usr/bin/python
"""Ansible module: the new Render Postgres user's URLs, its login proven first."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: credential_rotation_connection
short_description: Derive the database URLs of a rotation's new Render Postgres user
description:
  - A step of the C(credential_rotation) role (decisions in module_utils/credential_rotation.py). Reads
    Render, never changes it (C(changed=false)).
  - Reads the default user's connection info (C(GET /postgres/{id}/connection-info)), checks that it is
    O(new_user)'s, and returns the services' new value and, when O(database_url) logs in as one of
    O(leaked_users), that URL moved to the new user; with O(test_login) it logs in as the new user first.
options:
  new_user:
    description: The user the services move to.
    type: str
    required: true
  leaked_users:
    description: The leaked PostgreSQL usernames.
    type: list
    elements: str
    default: []
  database_url:
    description: The run's own database URL (recovery_database_url). Secret.
    type: str
  env_connection_string:
    description: Which connection string the services get.
    type: str
    choices: [internal, external]
    default: internal
  test_login:
    description: Log in as the new user (over O(database_url)'s host) before returning its URLs.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Before the user exists (it is created by the run), returns a stand-in value; no login.
  diff_mode:
    support: none
extends_documentation_fragment: [credential_rotation, render_api]
author: render-key-recovery
"""

EXAMPLES = r"""
- name: Read the new user's connection info and prove it logs in
  credential_rotation_connection:
    postgres: "{{ render_postgres_id }}"
    new_user: "{{ plan.plan.new_user }}"
    leaked_users: "{{ plan.plan.leaked_users }}"
    database_url: "{{ recovery_database_url }}"
  no_log: true
  register: urls
"""

RETURN = r"""
env_value:
  description: The services' new database URL. Secret.
  returned: success
  type: str
database_url:
  description: The run's database URL moved to the new user. Secret.
  returned: when database_url logged in as a leaked user
  type: str
login_url:
  description: O(database_url) logging in as the new user. Secret.
  returned: when database_url is given
  type: str
database_url_changed:
  description: Whether database_url changed.
  returned: success
  type: bool
"""

from ansible.module_utils.credential_rotation import RotationError, rotation_urls, url_username
from ansible.module_utils.credential_rotation_module import rotation_argument_spec, run_rotation_module


def connection(module, client, postgres_id):
    params = module.params
    info = client.get_connection_info(postgres_id)
    if module.check_mode and url_username(info.get("internalConnectionString")) != params["new_user"]:
        # The user is still to be created, so it has no connection info: plan with a stand-in.
        return {"env_value": f"postgresql://{params['new_user']}:(created by the run)@render/db",
                "database_url_changed": False}
    urls = rotation_urls(info, params["new_user"], params["leaked_users"], database_url=params["database_url"],
                         env_connection_string=params["env_connection_string"])
    if params["test_login"] and urls["login_url"] and not module.check_mode:
        test_login(module, urls["login_url"], params["new_user"])
    # Values equal to a no_log option would come back masked: return database_url only when new.
    result = {"env_value": urls["env_value"], "database_url_changed": urls["database_url_changed"]}
    if urls["login_url"]:  # database_url logging in as the new user: for the local .env files
        result["login_url"] = urls["login_url"]
    if urls["database_url_changed"]:
        result["database_url"] = urls["database_url"]
    return result


def test_login(module, url, user):
    from ansible.module_utils.pg_connection import ConnectionFailure, connect, ensure_psycopg2

    ensure_psycopg2(module)
    try:
        conn = connect({"database_url": url, "connect_timeout": 10})
    except ConnectionFailure as exc:
        raise RotationError(f"the new user {user} cannot log in: {exc}; nothing points at it yet") from None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT session_user")
            logged_in = cur.fetchone()[0]
    finally:
        conn.close()
    if logged_in != user:
        raise RotationError(f"logged in as {logged_in}, not {user}")


def main():
    spec = rotation_argument_spec(
        new_user={"type": "str", "required": True},
        leaked_users={"type": "list", "elements": "str", "default": []},
        database_url={"type": "str", "no_log": True},
        env_connection_string={"type": "str", "default": "internal", "choices": ["internal", "external"]},
        test_login={"type": "bool", "default": True},
    )
    run_rotation_module(spec, connection)


if __name__ == "__main__":
    main()
