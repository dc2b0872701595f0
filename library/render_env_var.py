#!/usr/bin/python
"""Ansible module: set or remove one environment variable of a Render service."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: render_env_var
short_description: Set or remove one environment variable of a Render service
description:
  - Reads the variable with C(GET /services/{serviceId}/env-vars/{key}) and changes only that
    key, with C(PUT /services/{serviceId}/env-vars/{key}) or C(DELETE ...). It never uses the
    replace-all C(PUT /services/{serviceId}/env-vars), so other variables cannot be lost.
  - Idempotent; the value is never shown, and the diff masks it.
  - Changing a variable does not redeploy the service; deploy afterwards (M(render_deploy))
    for running instances to see it.
  - Only variables set on the service itself; not those of a linked environment group.
options:
  service:
    description: The service ID (C(srv-...)) or its exact name.
    type: str
    required: true
    aliases: [service_id]
  key:
    description: The variable's name.
    type: str
    required: true
  value:
    description: The wanted value (with I(state=present)). Never logged.
    type: str
  generate_value:
    description:
      - With I(state=present) and no I(value), have Render generate a strong random value when
        the variable does not exist yet; an existing variable is left alone.
    type: bool
    default: false
  state:
    description: Whether the variable should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment: [render_api]
author: render-key-recovery
"""

EXAMPLES = r"""
- name: Point the API at the new database user
  render_env_var:
    service: "{{ render_service_id }}"
    key: DATABASE_URL
    value: "{{ new_connection.internalConnectionString }}"
  no_log: true
  register: database_url

- name: Remove a leftover variable
  render_env_var:
    service: demo-api
    key: OLD_DATABASE_URL
    state: absent
"""

RETURN = r"""
env_var:
  description: The variable's name and whether it exists now (never its value).
  returned: always
  type: dict
  sample: {"key": "DATABASE_URL", "present": true}
service_id:
  description: The service's ID.
  returned: always
  type: str
"""

from ansible.module_utils.render_module import (
    masked,
    render_argument_spec,
    run_module,
)


def _show(key, present, note=""):
    return f"{key}={masked('x')}{note}\n" if present else ""


def run(module, client):
    params = module.params
    key, state = params["key"], params["state"]
    if params["value"] is not None and params["generate_value"]:
        module.fail_json(msg="value and generate_value=true are mutually exclusive")
    service_id = client.find_service(params["service"])["id"]
    current = client.get_env_var(service_id, key)
    exists = current is not None
    changed = False
    note = ""
    if state == "present":
        if params["value"] is not None:
            if not exists or current.get("value") != params["value"]:
                changed = True
                note = " (new value)" if exists else ""
                if not module.check_mode:
                    client.put_env_var(service_id, key, params["value"])
        elif params["generate_value"]:
            if not exists:
                changed = True
                if not module.check_mode:
                    client.put_env_var(service_id, key, generate=True)
        else:
            module.fail_json(msg="state=present needs value or generate_value=true")
    elif exists:
        changed = True
        if not module.check_mode:
            client.delete_env_var(service_id, key)
    present_after = state == "present"
    result = {"changed": changed, "service_id": service_id, "env_var": {"key": key, "present": present_after}}
    if module._diff:
        result["diff"] = {"before": _show(key, exists), "after": _show(key, present_after, note),
                          "before_header": f"{service_id} env", "after_header": f"{service_id} env"}
    return result


def argument_spec():
    spec = render_argument_spec()
    spec.update(
        service={"type": "str", "required": True, "aliases": ["service_id"]},
        key={"type": "str", "required": True, "no_log": False},
        value={"type": "str", "no_log": True},
        generate_value={"type": "bool", "default": False},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
    )
    return spec


def main():
    run_module(argument_spec(), run)


if __name__ == "__main__":
    main()
