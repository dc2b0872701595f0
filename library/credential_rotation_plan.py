#!/usr/bin/python
"""Ansible module: refuse a leaked Render API key, then plan a credential rotation from Render's lists."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: credential_rotation_plan
short_description: Plan a rotation of leaked Render Postgres credentials
description:
  - The first step of the C(credential_rotation) role (decisions in module_utils/credential_rotation.py).
    Reads Render, never changes it (C(changed=false)).
  - Fails when the API key in use matches one of O(leaked_api_key_sha256), before the key is used
    (module_utils/credential_rotation_api_key.py, the check recover.yml runs too).
  - Then reads the instance's users, what each of O(services)' variables logs in as (values are read,
    never returned) and each service's newest deploy, and returns the plan - leaked users left, the user
    to move to, which services need a deploy and why, the steps.
options:
  leaked_users:
    description: The leaked PostgreSQL usernames.
    type: list
    elements: str
    default: []
  services:
    description:
      - C({service, env_vars, health}) items - the service ID or exact name, the variables carrying the
        database URL (default C([DATABASE_URL])), whether to check its health path after the deploy
        (default true; false for workers).
    type: list
    elements: dict
    default: []
  leaked_api_key_sha256:
    description: SHA-256 fingerprints (hex) of leaked Render API keys, never the keys.
    type: list
    elements: str
    default: []
  user_prefix:
    description: The new user's name is C(<user_prefix>_<run_id>).
    type: str
    default: app
  run_id:
    description: Names the new user; the same id gives the same name on a re-run.
    type: str
    default: ""
  vault_file:
    description: The vault file holding vault_render_api_key, named in the refusal of a leaked key;
      empty - "your inventory's vault file".
    type: str
    default: ""
attributes:
  check_mode:
    support: full
    description: Reads only, in check mode as in a real run.
  diff_mode:
    support: none
extends_documentation_fragment: [credential_rotation, render_api]
author: render-key-recovery
"""

EXAMPLES = r"""
- name: Plan the rotation
  credential_rotation_plan:
    postgres: "{{ render_postgres_id }}"
    leaked_users: [app_2024, app_2025]
    services: [{service: "{{ render_service_id }}", env_vars: [DATABASE_URL]}]
    run_id: "20260101"
  no_log: true
  register: plan
"""

RETURN = r"""
plan:
  description: rotate, leaked_users, remaining, gone, default_user, new_user, create_user, env_on_leaked,
    env_to_update, deploys, steps, summary, postgres_id, services (each with deploy and deploy_reason).
  returned: success
  type: dict
"""

from ansible.module_utils.credential_rotation import plan_rotation, url_username, validate_usernames
from ansible.module_utils.credential_rotation_api_key import check_api_key
from ansible.module_utils.credential_rotation_module import rotation_argument_spec, run_rotation_module


def refuse_a_leaked_key(module):
    params = module.params
    check_api_key(params["api_key"], params["leaked_api_key_sha256"], params["vault_file"])


def plan(module, client, postgres_id):
    params = module.params
    leaked = validate_usernames(params["leaked_users"])
    env_users, services, newest = {}, [], {}
    for item in params["services"]:
        keys = item.get("env_vars") or ["DATABASE_URL"]
        service_id = client.find_service(item["service"])["id"]
        services.append({"service": service_id, "env_vars": list(keys), "health": bool(item.get("health", True))})
        for key in keys:
            current = client.get_env_var(service_id, key)
            # Only the user name leaves this function, never the value.
            env_users[f"{service_id} {key}"] = url_username((current or {}).get("value"))
        newest[service_id] = next(iter(client.list_deploys(service_id, limit=1, max_items=1)), None)
    found = plan_rotation(client.list_credentials(postgres_id), leaked, prefix=params["user_prefix"],
                          run_id=params["run_id"], env_users=env_users, newest_deploys=newest)
    decided = {d["service"]: d for d in found["deploys"]}
    for service in services:  # no decision (nothing to rotate): deploy, as the safe default
        decision = decided.get(service["service"], {"deploy": True, "reason": "nothing proves it runs the new user"})
        service.update(deploy=decision["deploy"], deploy_reason=decision["reason"])
    found.update(postgres_id=postgres_id, services=services)
    return {"plan": found}


def main():
    spec = rotation_argument_spec(
        leaked_users={"type": "list", "elements": "str", "default": []},
        services={"type": "list", "elements": "dict", "default": []},
        leaked_api_key_sha256={"type": "list", "elements": "str", "default": [], "no_log": False},
        user_prefix={"type": "str", "default": "app"},
        run_id={"type": "str", "default": ""},
        vault_file={"type": "str", "default": ""},
    )
    # A leaked key is refused before it is used for anything.
    run_rotation_module(spec, plan, before_render=refuse_a_leaked_key)


if __name__ == "__main__":
    main()
