#!/usr/bin/python
"""The credential_rotation role's module: plan, derive the new URLs, wait, verify."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: credential_rotation
short_description: Plan and check a rotation of leaked Render Postgres credentials
description:
  - The decisions of the C(credential_rotation) role, in module_utils/credential_rotation.py. It never
    changes anything on Render (creating, updating and deleting are the M(render_postgres),
    M(render_env_var) and M(render_deploy) tasks of the role), so it always returns C(changed=false).
  - O(step=plan) fails when the API key in use matches one of O(leaked_api_key_sha256); then reads the
    instance's users, what each of O(services)' variables logs in as (values are read, never
    returned) and each service's newest deploy, and returns the plan (leaked users left, the user to
    move to, which services need a deploy and why, the steps).
  - O(step=connection) reads the default user's connection info (C(GET /postgres/{id}/connection-info)),
    checks that it is O(new_user)'s, and returns the services' new value and, when O(database_url) logs in
    as a leaked user, that URL moved to the new user; with O(test_login) it logs in as the new user first.
    In check mode, before the user exists, it returns a stand-in.
  - O(step=wait_idle) polls the users until none of O(users) has an open connection, failing after
    O(timeout) seconds. O(step=verify) fails when one of O(users) is still listed, or when
    O(database_url) logs in as one of them and a login with it (with O(test_login)) is not refused for
    its password.
options:
  step:
    description: Which decision.
    type: str
    required: true
    choices: [plan, connection, wait_idle, verify]
  postgres:
    description: The instance ID (C(dpg-...)) or its exact name. Required.
    type: str
  leaked_users:
    description: The leaked PostgreSQL usernames.
    type: list
    elements: str
    default: []
  services:
    description:
      - O(step=plan). C({service, env_vars, health}) items - the service ID or exact name, the variables
        carrying the database URL (default C([DATABASE_URL])), whether to check its health path after
        the deploy (default true; false for workers).
    type: list
    elements: dict
    default: []
  leaked_api_key_sha256:
    description: O(step=plan). SHA-256 fingerprints (hex) of leaked Render API keys, never the keys.
    type: list
    elements: str
    default: []
  user_prefix:
    description: O(step=plan). The new user's name is C(<user_prefix>_<run_id>).
    type: str
    default: app
  run_id:
    description: O(step=plan). Names the new user; the same id gives the same name on a re-run.
    type: str
    default: ""
  new_user:
    description: O(step=connection) and O(step=verify). The user the services move to.
    type: str
  database_url:
    description: O(step=connection) and O(step=verify). The run's own database URL (recovery_database_url).
      Secret.
    type: str
  env_connection_string:
    description: O(step=connection). Which connection string the services get.
    type: str
    choices: [internal, external]
    default: internal
  test_login:
    description: O(step=connection) - log in as the new user (over O(database_url)'s host) first.
      O(step=verify) - prove O(database_url)'s leaked password is refused.
    type: bool
    default: true
  users:
    description: O(step=wait_idle) and O(step=verify). The users to wait for, or that must be gone.
    type: list
    elements: str
    default: []
  timeout:
    description: O(step=wait_idle). Seconds to wait.
    type: int
    default: 300
  interval:
    description: O(step=wait_idle). Seconds between two reads.
    type: float
    default: 5
  database_url_changed:
    description: O(step=verify). Whether the run's database URL moved to the new user (the vault needs it).
    type: bool
    default: false
  vault_file:
    description: O(step=plan) and O(step=verify). The vault file holding vault_recovery_database_url and
      vault_render_api_key, named in the operator's next action; empty - "your inventory's vault file".
    type: str
    default: ""
extends_documentation_fragment: [render_api]
author: render-key-recovery
"""

EXAMPLES = r"""
- name: Plan the rotation
  credential_rotation:
    step: plan
    postgres: "{{ render_postgres_id }}"
    leaked_users: [app_2024, app_2025]
    services: [{service: "{{ render_service_id }}", env_vars: [DATABASE_URL]}]
    run_id: "20260101"
  no_log: true
  register: plan
"""

RETURN = r"""
plan:
  description: O(step=plan). rotate, leaked_users, remaining, gone, default_user, new_user, create_user,
    env_on_leaked, env_to_update, deploys, steps, postgres_id, services (each with deploy and deploy_reason).
  returned: step=plan
  type: dict
env_value:
  description: O(step=connection). The services' new database URL. Secret.
  returned: step=connection
  type: str
database_url:
  description: O(step=connection). The run's database URL moved to the new user. Secret.
  returned: step=connection, when database_url logged in as a leaked user
  type: str
login_url:
  description: O(step=connection). O(database_url) logging in as the new user. Secret.
  returned: step=connection, when database_url is given
  type: str
database_url_changed:
  description: O(step=connection). Whether database_url changed.
  returned: step=connection
  type: bool
actions:
  description: O(step=verify). What was proven and what the operator must do now (never a secret).
  returned: step=verify
  type: list
  elements: str
credentials:
  description: O(step=wait_idle) and O(step=verify). The users as last listed (names, default, openConnections).
  returned: step=wait_idle, step=verify
  type: list
"""

import time  # noqa: E402

from ansible.module_utils.credential_rotation import (  # noqa: E402
    RotationError,
    busy_users,
    check_api_key,
    default_user,
    leaked_login_proof,
    operator_actions,
    plan_rotation,
    rotation_urls,
    still_listed,
    url_username,
    validate_usernames,
)
from ansible.module_utils.render_http import RenderAPIError  # noqa: E402
from ansible.module_utils.render_module import client_from_module, render_argument_spec  # noqa: E402


def _plan(module, client, postgres_id):
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
    plan = plan_rotation(client.list_credentials(postgres_id), leaked, prefix=params["user_prefix"],
                         run_id=params["run_id"], env_users=env_users, newest_deploys=newest)
    decided = {d["service"]: d for d in plan["deploys"]}
    for service in services:  # no decision (nothing to rotate): deploy, as the safe default
        decision = decided.get(service["service"], {"deploy": True, "reason": "nothing proves it runs the new user"})
        service.update(deploy=decision["deploy"], deploy_reason=decision["reason"])
    plan.update(postgres_id=postgres_id, services=services)
    return {"plan": plan}


def _connection(module, client, postgres_id):
    params = module.params
    info = client.get_connection_info(postgres_id)
    if module.check_mode and url_username(info.get("internalConnectionString")) != params["new_user"]:
        # The user is still to be created, so it has no connection info: plan with a stand-in.
        return {"env_value": f"postgresql://{params['new_user']}:(created by the run)@render/db",
                "database_url_changed": False}
    urls = rotation_urls(info, params["new_user"], params["leaked_users"], database_url=params["database_url"],
                         env_connection_string=params["env_connection_string"])
    if params["test_login"] and urls["login_url"] and not module.check_mode:
        _test_login(module, urls["login_url"], params["new_user"])
    # Values equal to a no_log option would come back masked: return database_url only when new.
    result = {"env_value": urls["env_value"], "database_url_changed": urls["database_url_changed"]}
    if urls["login_url"]:  # database_url logging in as the new user: for the local .env files
        result["login_url"] = urls["login_url"]
    if urls["database_url_changed"]:
        result["database_url"] = urls["database_url"]
    return result


def _test_login(module, url, user):
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


def _wait_idle(module, client, postgres_id):
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


def _verify(module, client, postgres_id):
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
        proof.append(leaked_login_proof(leaked_login, _login_error(module, params["database_url"])))
    actions = operator_actions(rotated=True, database_url_changed=params["database_url_changed"],
                               new_user=params["new_user"], deleted=params["users"],
                               vault_file=params["vault_file"], proof=proof)
    return {"credentials": credentials, "actions": actions}


def _login_error(module, url):
    """The server's refusal of a login with ``url``, or None when it logs in."""
    from ansible.module_utils.pg_connection import connection_params, ensure_psycopg2, psycopg2

    ensure_psycopg2(module)
    try:
        psycopg2.connect(**connection_params({"database_url": url, "connect_timeout": 10})).close()
    except psycopg2.Error as exc:  # libpq's text names the user, never the password
        return str(exc)
    return None


def main():
    from ansible.module_utils.basic import AnsibleModule

    spec = render_argument_spec()
    spec.update(
        step={"type": "str", "required": True, "choices": ["plan", "connection", "wait_idle", "verify"]},
        postgres={"type": "str"},
        leaked_users={"type": "list", "elements": "str", "default": []},
        services={"type": "list", "elements": "dict", "default": []},
        leaked_api_key_sha256={"type": "list", "elements": "str", "default": [], "no_log": False},
        user_prefix={"type": "str", "default": "app"},
        run_id={"type": "str", "default": ""},
        new_user={"type": "str"},
        database_url={"type": "str", "no_log": True},
        env_connection_string={"type": "str", "default": "internal", "choices": ["internal", "external"]},
        test_login={"type": "bool", "default": True},
        users={"type": "list", "elements": "str", "default": []},
        timeout={"type": "int", "default": 300},
        interval={"type": "float", "default": 5.0},
        database_url_changed={"type": "bool", "default": False},
        vault_file={"type": "str", "default": ""},
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    step = module.params["step"]
    try:
        if not module.params["postgres"]:
            module.fail_json(msg=f"step={step} needs postgres")
        if step == "plan":  # a leaked key is refused before it is used for anything
            check_api_key(module.params["api_key"], module.params["leaked_api_key_sha256"],
                          module.params["vault_file"])
        client = client_from_module(module)
        postgres_id = client.find_postgres(module.params["postgres"])["id"]
        steps = {"plan": _plan, "connection": _connection, "wait_idle": _wait_idle, "verify": _verify}
        result = steps[step](module, client, postgres_id)
    except (RotationError, RenderAPIError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
