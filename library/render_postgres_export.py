#!/usr/bin/python
"""Ansible module: make sure Render holds a recent export of a Postgres instance."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: render_postgres_export
short_description: Make sure Render holds a recent export of a Render Postgres instance
description:
  - Lists the instance's exports (C(GET /postgres/{postgresId}/export)) and, when none is younger than
    I(max_age_minutes), asks Render for one (C(POST /postgres/{postgresId}/export), 202 with no body).
    A create that failed ambiguously is retried only after the list shows it made no export.
  - Render's export is a second copy kept by Render, never a replacement for a locally verified dump.
  - Check mode sends no mutating request.
options:
  postgres:
    description: The instance ID (C(dpg-...)) or its exact name.
    type: str
    required: true
    aliases: [postgres_id]
  max_age_minutes:
    description: An export at most this old is enough; none younger starts a new one.
    type: int
    default: 60
extends_documentation_fragment: [render_api]
attributes:
  check_mode:
    support: full
    description: Says whether it would request an export; sends nothing.
author: render-key-recovery
"""

EXAMPLES = r"""
- name: Ask Render for its own export too
  render_postgres_export:
    postgres: "{{ render_postgres_id }}"
    api_key: "{{ render_api_key }}"
  no_log: true
"""

RETURN = r"""
exports:
  description: The instance's exports, newest first, as Render lists them.
  returned: always
  type: list
newest:
  description: The newest export (C(id), C(createdAt), C(url) when ready), if any.
  returned: when an export exists
  type: dict
"""

from datetime import UTC, datetime, timedelta

from ansible.module_utils.render_module import render_argument_spec, run_module


def _created(export) -> datetime:
    return datetime.fromisoformat(export["createdAt"].replace("Z", "+00:00"))


def _newest(exports):
    return max(exports, key=_created, default=None)


def run(module, client):
    params = module.params
    postgres_id = client.find_postgres(params["postgres"])["id"]
    exports = client.list_exports(postgres_id)
    newest = _newest(exports)
    recent = newest is not None and _created(newest) >= datetime.now(UTC) - timedelta(
        minutes=params["max_age_minutes"])
    result = {"changed": not recent, "postgres_id": postgres_id}
    if not recent and not module.check_mode:
        client.create_export(postgres_id)
        exports = client.list_exports(postgres_id)
        newest = _newest(exports)
    result["exports"] = sorted(exports, key=_created, reverse=True)
    if newest is not None:
        result["newest"] = newest
    return result


def argument_spec():
    spec = render_argument_spec()
    spec.update(
        postgres={"type": "str", "required": True, "aliases": ["postgres_id"]},
        max_age_minutes={"type": "int", "default": 60},
    )
    return spec


def main():
    run_module(argument_spec(), run)


if __name__ == "__main__":
    main()
