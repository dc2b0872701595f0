#!/usr/bin/python
"""Ansible module: read a Render Postgres instance; create or delete its credentials."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: render_postgres
short_description: Read a Render Postgres instance and manage its PostgreSQL users (credentials)
description:
  - I(state=info) reads the instance (C(GET /postgres/{postgresId})) and its users
    (C(GET /postgres/{postgresId}/credentials)); with I(connection_info=true) also the
    connection info of the default user (C(GET /postgres/{postgresId}/connection-info)).
  - I(state=present) creates the user I(username) when it does not exist
    (C(POST /postgres/{postgresId}/credentials)). Render makes a new user the database's
    default user (the one in its connection strings) and answers 202 with no body; the module
    waits until the list shows the user as default. A create that failed ambiguously is
    retried only after the list shows that the user does not exist.
  - I(state=absent) deletes the user (C(DELETE /postgres/{postgresId}/credentials/{username}))
    when it exists. The module refuses to delete the default user.
  - Render has no password reset; rotating the password means creating a new user, pointing the
    services at it, deploying, then deleting the old user.
  - Check mode sends no mutating request.
options:
  postgres:
    description: The instance ID (C(dpg-...)) or its exact name.
    type: str
    required: true
    aliases: [postgres_id]
  state:
    description: Read only (C(info)), or make sure I(username) exists (C(present)) or not (C(absent)).
    type: str
    choices: [info, present, absent]
    default: info
  username:
    description: The PostgreSQL user to create or delete.
    type: str
  connection_info:
    description:
      - Return the default user's connection info (password and connection strings). They are
        secrets; set C(no_log) on the task.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for a created user to be listed as the default.
    type: int
    default: 120
extends_documentation_fragment: [render_api]
author: render-key-recovery
"""

EXAMPLES = r"""
- name: Create a new database user; it becomes the default
  render_postgres:
    postgres: "{{ render_postgres_id }}"
    state: present
    username: app_2026_11
    connection_info: true
  no_log: true
  register: rotated

- name: Delete the old user once nothing uses it
  render_postgres:
    postgres: "{{ render_postgres_id }}"
    state: absent
    username: "{{ old_user }}"
"""

RETURN = r"""
postgres:
  description: The instance as Render returned it.
  returned: always
  type: dict
credentials:
  description: The instance's users after the change (predicted in check mode).
  returned: always
  type: list
  elements: dict
  sample: [{"username": "app", "default": true, "createdAt": "2024-01-01T00:00:00Z", "openConnections": 3}]
default_user:
  description: The default user's name.
  returned: always
  type: str
connection_info:
  description: password, internalConnectionString, externalConnectionString, psqlCommand. Secrets.
  returned: when connection_info=true (not in check mode after a create)
  type: dict
"""

import time

from ansible.module_utils.render_module import (
    render_argument_spec,
    run_module,
)


def _default(credentials):
    return next((c.get("username") for c in credentials if c.get("default")), None)


def run(module, client):
    params = module.params
    state, username = params["state"], params["username"]
    if state != "info" and not username:
        module.fail_json(msg=f"state={state} needs username")
    instance = client.find_postgres(params["postgres"])
    postgres_id = instance["id"]
    credentials = client.list_credentials(postgres_id)
    names = [c.get("username") for c in credentials]
    before = {"users": sorted(names), "default": _default(credentials)}
    changed = False
    if state == "present" and username not in names:
        changed = True
        if module.check_mode:
            credentials = [dict(c, default=False) for c in credentials] + [
                {"username": username, "default": True, "openConnections": 0}]
        else:
            client.create_credential(postgres_id, username)
            deadline = time.monotonic() + params["wait_timeout"]
            while True:
                credentials = client.list_credentials(postgres_id)
                if _default(credentials) == username:
                    break
                if time.monotonic() >= deadline:
                    module.fail_json(msg=f"credential {username} of postgres {postgres_id} was accepted but is "
                                         f"not the default user after {params['wait_timeout']}s",
                                     credentials=credentials)
                time.sleep(1)
            instance = client.get_postgres(postgres_id)
    elif state == "present" and _default(credentials) != username:
        module.warn(f"user {username} exists but is not the default user ({_default(credentials)}); Render "
                    "cannot make an existing user the default: create a new one to rotate")
    elif state == "absent" and username in names:
        if _default(credentials) == username and module.check_mode:
            # Earlier tasks of the play (a create) would have made another user the default.
            module.warn(f"{username} is the default user now; deleting it will fail unless another "
                        "user has been made the default by then")
        elif _default(credentials) == username:
            module.fail_json(msg=f"refusing to delete {username}: it is the default user of postgres "
                                 f"{postgres_id}; create a new user first", credentials=credentials)
        changed = True
        if module.check_mode:
            credentials = [c for c in credentials if c.get("username") != username]
        else:
            client.delete_credential(postgres_id, username)
            credentials = client.list_credentials(postgres_id)
    after = {"users": sorted(c.get("username") for c in credentials), "default": _default(credentials)}
    result = {"changed": changed, "postgres": instance, "credentials": credentials,
              "default_user": after["default"]}
    if params["connection_info"] and not (module.check_mode and changed):
        result["connection_info"] = client.get_connection_info(postgres_id)
    if module._diff:
        result["diff"] = {"before": before, "after": after, "before_header": f"postgres {postgres_id}",
                          "after_header": f"postgres {postgres_id}"}
    return result


def argument_spec():
    spec = render_argument_spec()
    spec.update(
        postgres={"type": "str", "required": True, "aliases": ["postgres_id"]},
        state={"type": "str", "default": "info", "choices": ["info", "present", "absent"]},
        username={"type": "str"},
        connection_info={"type": "bool", "default": False},
        wait_timeout={"type": "int", "default": 120},
    )
    return spec


def main():
    run_module(argument_spec(), run)


if __name__ == "__main__":
    main()
