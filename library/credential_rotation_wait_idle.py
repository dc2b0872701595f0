#!/usr/bin/python
"""Ansible module: wait until no leaked Render Postgres user has an open connection."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: credential_rotation_wait_idle
short_description: Wait until the leaked users of a Render Postgres instance are idle
description:
  - A step of the C(credential_rotation) role, before the leaked users are deleted. Reads Render, never
    changes it (C(changed=false)).
  - Polls the instance's users until none of O(users) has an open connection; fails after O(timeout)
    seconds naming each busy user and its connection count (nothing is deleted then).
options:
  users:
    description: The users to wait for.
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to wait.
    type: int
    default: 300
  interval:
    description: Seconds between two reads.
    type: float
    default: 5
extends_documentation_fragment: [credential_rotation, credential_rotation.read_only, render_api]
author: render-key-recovery
"""

EXAMPLES = r"""
- name: Wait until no leaked user has an open connection
  credential_rotation_wait_idle:
    postgres: "{{ render_postgres_id }}"
    users: "{{ plan.plan.remaining }}"
    timeout: 300
  no_log: true
"""

RETURN = r"""
credentials:
  description: The users as last listed (names, default, openConnections).
  returned: success
  type: list
"""

import time

from ansible.module_utils.credential_rotation import RotationError, busy_users
from ansible.module_utils.credential_rotation_module import rotation_argument_spec, run_rotation_module


def wait_idle(module, client, postgres_id):
    params = module.params
    deadline = time.monotonic() + params["timeout"]
    while True:
        credentials = client.list_credentials(postgres_id)
        busy = busy_users(credentials, params["users"])
        if not busy:
            return {"credentials": credentials}
        if time.monotonic() >= deadline:
            counts = ", ".join(f"{user}: {n}" for user, n in sorted(busy.items()))
            raise RotationError(
                f"leaked users still have open connections after {params['timeout']}s ({counts}): something "
                "other than the redeployed services uses them. Nothing was deleted; the services already use "
                "the new user. Stop that client, then re-run.")
        time.sleep(params["interval"])


def main():
    spec = rotation_argument_spec(
        users={"type": "list", "elements": "str", "default": []},
        timeout={"type": "int", "default": 300},
        interval={"type": "float", "default": 5.0},
    )
    run_rotation_module(spec, wait_idle)


if __name__ == "__main__":
    main()
