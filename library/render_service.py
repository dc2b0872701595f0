#!/usr/bin/python
"""Ansible module: read a Render service; set its maintenance mode; suspend or resume it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: render_service
short_description: Read a Render service, toggle its maintenance mode, suspend or resume it
description:
  - Reads a service through Render's public API (C(GET /services/{serviceId})).
  - Sets maintenance mode with C(PATCH /services/{serviceId}) whose body holds only
    C(serviceDetails.maintenanceMode) (both C(enabled) and C(uri)), only when the
    service is not already in the wanted state. Maintenance mode exists only for web services;
    while it is on, Render answers every request with 503 and the maintenance page.
  - Suspends or resumes a service (C(POST /services/{serviceId}/suspend|resume)), for service
    types without maintenance mode. Render answers 202; the module waits until the service
    reports the new state unless I(wait=false).
  - Check mode sends no mutating request and reports what would change.
options:
  service:
    description: The service ID (C(srv-...)) or its exact name.
    type: str
    required: true
    aliases: [service_id, name]
  maintenance_mode:
    description: Whether maintenance mode should be on. Omit to leave it as it is.
    type: bool
  maintenance_uri:
    description:
      - The page Render serves in maintenance mode; empty for Render's default page.
        It must not be a URL of the service itself. Omit to keep the current one.
    type: str
  suspended:
    description: Whether the service should be suspended. Omit to leave it as it is.
    type: bool
  wait:
    description: After suspend or resume, wait until the service reports the new state.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for suspend or resume to show.
    type: int
    default: 120
notes:
  - Render limits PATCH, suspend and resume to 10 per minute per service; the client waits
    on 429 as Render's C(Retry-After) or C(Ratelimit-Reset) says.
extends_documentation_fragment: [render_api]
author: render-key-recovery
"""

EXAMPLES = r"""
- name: Put the API into maintenance mode before the migration
  render_service:
    service: "{{ render_service_id }}"
    maintenance_mode: true
    maintenance_uri: ""

- name: Read the service
  render_service:
    service: demo-api
  register: svc

- name: Suspend a background worker while its database is retyped
  render_service:
    service: srv-d0workerworkerwork00
    suspended: true
"""

RETURN = r"""
service:
  description: The service as Render returned it (after the change; before it in check mode).
  returned: always
  type: dict
maintenance_mode:
  description: The maintenance mode that is (or, in check mode, would be) in force.
  returned: when the service is a web service
  type: dict
  sample: {"enabled": true, "uri": ""}
suspended:
  description: Whether the service is (or would be) suspended.
  returned: always
  type: bool
"""

import time

from ansible.module_utils.render_module import (
    render_argument_spec,
    run_module,
)


def _state(service):
    details = service.get("serviceDetails") or {}
    mm = details.get("maintenanceMode")
    return {
        "maintenance_mode": bool(mm.get("enabled")) if mm else None,
        "maintenance_uri": (mm.get("uri") or "") if mm else None,
        "suspended": service.get("suspended") == "suspended",
    }


def run(module, client):
    params = module.params
    service = client.find_service(params["service"])
    service_id = service["id"]
    before = _state(service)
    after = dict(before)
    changed = False

    want_mm = params["maintenance_mode"] is not None or params["maintenance_uri"] is not None
    if want_mm:
        if before["maintenance_mode"] is None:
            module.fail_json(
                msg=f"service {service_id} is a {service.get('type')}: maintenance mode exists only for "
                    "web services; use suspended: true to take it offline",
                service=service)
        wanted = {
            "enabled": before["maintenance_mode"] if params["maintenance_mode"] is None
            else params["maintenance_mode"],
            "uri": before["maintenance_uri"] if params["maintenance_uri"] is None else params["maintenance_uri"],
        }
        if wanted != {"enabled": before["maintenance_mode"], "uri": before["maintenance_uri"]}:
            changed = True
            after.update(maintenance_mode=wanted["enabled"], maintenance_uri=wanted["uri"])
            if not module.check_mode:
                service = client.set_maintenance_mode(service_id, wanted["enabled"], wanted["uri"])

    if params["suspended"] is not None and params["suspended"] != before["suspended"]:
        changed = True
        after["suspended"] = params["suspended"]
        if not module.check_mode:
            if params["suspended"]:
                client.suspend_service(service_id)
            else:
                client.resume_service(service_id)
            service = client.get_service(service_id)
            if params["wait"]:
                wanted_flag = "suspended" if params["suspended"] else "not_suspended"
                deadline = time.monotonic() + params["wait_timeout"]
                while service.get("suspended") != wanted_flag:
                    if time.monotonic() >= deadline:
                        module.fail_json(msg=f"service {service_id} is still {service.get('suspended')} "
                                             f"{params['wait_timeout']}s after the request", service=service)
                    time.sleep(2)
                    service = client.get_service(service_id)

    result = {"changed": changed, "service": service, "suspended": after["suspended"]}
    if after["maintenance_mode"] is not None:
        result["maintenance_mode"] = {"enabled": after["maintenance_mode"], "uri": after["maintenance_uri"]}
    if module._diff:
        result["diff"] = {"before": before, "after": after,
                          "before_header": f"service {service_id}", "after_header": f"service {service_id}"}
    return result


def argument_spec():
    spec = render_argument_spec()
    spec.update(
        service={"type": "str", "required": True, "aliases": ["service_id", "name"]},
        maintenance_mode={"type": "bool"},
        maintenance_uri={"type": "str"},
        suspended={"type": "bool"},
        wait={"type": "bool", "default": True},
        wait_timeout={"type": "int", "default": 120},
    )
    return spec


def main():
    run_module(argument_spec(), run)


if __name__ == "__main__":
    main()
