#!/usr/bin/python
"""Ansible module: query Render's logs of services or Postgres instances."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: render_logs
short_description: Query the logs of Render services or Postgres instances
description:
  - Reads C(GET /logs) and follows Render's time pagination (C(hasMore), C(nextStartTime),
    C(nextEndTime)) until I(limit) lines or the end of the window.
  - Read only; never changes anything.
options:
  resources:
    description: IDs of the services or Postgres instances (same owner, same region).
    type: list
    elements: str
    required: true
    aliases: [resource]
  owner_id:
    description: The workspace ID; by default the owner of the first resource.
    type: str
  start_time:
    description: ISO 8601 start of the window; Render's default is an hour ago.
    type: str
  end_time:
    description: ISO 8601 end of the window; Render's default is now.
    type: str
  direction:
    description: C(backward) returns the newest lines first, C(forward) the oldest.
    type: str
    choices: [forward, backward]
    default: backward
  types:
    description: Only these log types (C(app), C(request), C(build), ...).
    type: list
    elements: str
  levels:
    description: Only these levels.
    type: list
    elements: str
  text:
    description: Only lines matching these texts (Render supports wildcards and regular expressions).
    type: list
    elements: str
  limit:
    description: At most this many lines in all.
    type: int
    default: 200
extends_documentation_fragment: [render_api]
author: render-key-recovery
"""

EXAMPLES = r"""
- name: The last build and pre-deploy lines of the API
  render_logs:
    resources: ["{{ render_service_id }}"]
    types: [build]
    limit: 50
  register: build_logs
"""

RETURN = r"""
logs:
  description: Log entries as Render returns them (id, message, timestamp, labels), in I(direction) order.
  returned: always
  type: list
  elements: dict
lines:
  description: Just the messages, oldest first.
  returned: always
  type: list
  elements: str
has_more:
  description: Whether more lines exist in the window than were returned.
  returned: always
  type: bool
next_start_time:
  description: Where the next page would start.
  returned: always
  type: str
next_end_time:
  description: Where the next page would end.
  returned: always
  type: str
"""

from ansible.module_utils.render_module import (
    render_argument_spec,
    run_module,
)


def _owner_of(client, resource_id):
    if resource_id.startswith("dpg-"):
        return client.get_postgres(resource_id)["owner"]["id"]
    return client.get_service(resource_id)["ownerId"]


def run(module, client):
    params = module.params
    owner_id = params["owner_id"] or _owner_of(client, params["resources"][0])
    filters = {"type": params["types"], "level": params["levels"], "text": params["text"]}
    result = client.query_logs(owner_id, params["resources"], start_time=params["start_time"],
                               end_time=params["end_time"], direction=params["direction"],
                               filters=filters, page_limit=min(100, max(1, params["limit"])),
                               max_logs=params["limit"])
    logs = result["logs"]
    ordered = logs if params["direction"] == "forward" else list(reversed(logs))
    return {"changed": False, "logs": logs, "lines": [entry.get("message", "") for entry in ordered],
            "has_more": result["has_more"], "next_start_time": result["next_start_time"],
            "next_end_time": result["next_end_time"], "owner_id": owner_id}


def argument_spec():
    spec = render_argument_spec()
    spec.update(
        resources={"type": "list", "elements": "str", "required": True, "aliases": ["resource"]},
        owner_id={"type": "str"},
        start_time={"type": "str"},
        end_time={"type": "str"},
        direction={"type": "str", "default": "backward", "choices": ["forward", "backward"]},
        types={"type": "list", "elements": "str"},
        levels={"type": "list", "elements": "str"},
        text={"type": "list", "elements": "str"},
        limit={"type": "int", "default": 200},
    )
    return spec


def main():
    run_module(argument_spec(), run)


if __name__ == "__main__":
    main()
