#!/usr/bin/python
"""The gates a protected environment's recovery must pass; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: recovery_gates
short_description: Refuse a protected environment's recovery unless confirmed, rehearsed on staging and in its window
description:
  - Reads the database's schema fingerprint (catalog only, without owners - the backups' fingerprint) and the
    rehearsal environments' run reports, and decides three gates for a protected O(environment) -
    C(confirm) (O(confirm) names the environment), C(staging_first) (a rehearsal environment's recovery
    succeeded on a schema with this fingerprint, before or after its conversion) and C(maintenance_window)
    (now, UTC, inside O(window)).
  - C(staging_first) and C(maintenance_window) may be overridden by name in O(overrides); the result says so.
  - Fails naming every refused gate, before anything changes. In check mode it never fails - it returns which
    gates would pass or refuse.
  - O(gates) names the gates a playbook meets; the others are not applicable. The database is read only for
    C(staging_first).
  - Read-only; never reports a change.
options:
  environment:
    description: The app environment's name.
    type: str
    required: true
  protected_environments:
    description: Environments that meet the gates.
    type: list
    elements: str
    default: [production]
  confirm:
    description: The operator's confirmation - must equal O(environment).
    type: str
    default: ""
  overrides:
    description: Gates to let pass although refused, by name.
    type: list
    elements: str
    choices: [staging_first, maintenance_window]
    default: []
  window:
    description: The maintenance window - C(days) (mon..sun), C(start_hour) and C(end_hour) (UTC, whole hours);
      omit for none.
    type: dict
  rehearsal_reports:
    description: Report directories (or run-report.json files) of the rehearsal environments.
    type: list
    elements: path
    default: []
  gates:
    description: The gates this playbook meets (restore and rotation change no schema - no C(staging_first)).
    type: list
    elements: str
    choices: [confirm, staging_first, maintenance_window]
    default: [confirm, staging_first, maintenance_window]
  schemas:
    description: Schemas fingerprinted.
    type: list
    elements: str
    default: [public]
extends_documentation_fragment: [postgres_connection]
attributes:
  check_mode:
    support: full
    description: Decides the same gates and never fails on a refusal.
  diff_mode:
    support: none
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Check the production gates before anything changes
  recovery_gates:
    database_url: "{{ recovery_database_url }}"
    environment: production
    confirm: "{{ recovery_confirm | default('') }}"
    rehearsal_reports: ["reports/staging"]
    window: {days: [sat, sun], start_hour: 2, end_hour: 6}
  no_log: true
"""

RETURN = r"""
gates:
  description: One entry per gate - gate, status (passed, refused, overridden, not applicable), message.
  returned: always
  type: list
schema_fingerprint:
  description: SHA-256 of the schema's objects (the run report records it for later gates); empty when
    C(staging_first) is not among O(gates).
  returned: always
  type: str
refused:
  description: The refused gates, each with its message.
  returned: always
  type: list
"""

from datetime import UTC, datetime

from ansible.module_utils.module_refusal import RefusingModule
from ansible.module_utils.pg_catalog import CatalogReader
from ansible.module_utils.pg_catalog_fingerprint import fingerprint
from ansible.module_utils.pg_connection import (
    ConnectionFailure,
    connect,
    connection_argument_spec,
    ensure_psycopg2,
)
from ansible.module_utils.recovery_gates import (
    GATES,
    OVERRIDABLE,
    check_inputs,
    evaluate,
    refusals,
    rehearsal_reports,
)


def schema_fingerprint_of(params) -> str:
    """The fingerprint the backups record, read in a read-only transaction."""
    conn = connect(params)
    try:
        conn.set_session(readonly=True)
        return fingerprint(CatalogReader(conn).schema_objects(params["schemas"]))
    finally:
        conn.rollback()
        conn.close()


def main():
    module = RefusingModule(
        argument_spec=connection_argument_spec() | {
            "environment": {"type": "str", "required": True},
            "protected_environments": {"type": "list", "elements": "str", "default": ["production"]},
            "confirm": {"type": "str", "default": ""},
            "overrides": {"type": "list", "elements": "str", "choices": list(OVERRIDABLE), "default": []},
            "window": {"type": "dict"},
            "rehearsal_reports": {"type": "list", "elements": "path", "default": []},
            "gates": {"type": "list", "elements": "str", "choices": list(GATES), "default": list(GATES)},
            "schemas": {"type": "list", "elements": "str", "default": ["public"]},
        },
        supports_check_mode=True,
    )
    ensure_psycopg2(module)
    p = module.params
    staging_first = "staging_first" in p["gates"]
    try:
        check_inputs(overrides=p["overrides"], window=p["window"])
        schema_fingerprint = schema_fingerprint_of(p) if staging_first else ""
    except (ValueError, ConnectionFailure) as exc:
        module.fail_json(msg=str(exc))
    gates = evaluate(environment=p["environment"], protected=p["protected_environments"], confirm=p["confirm"],
                     overrides=p["overrides"], window=p["window"], now=datetime.now(UTC),
                     fingerprint=schema_fingerprint, applying=p["gates"],
                     reports=rehearsal_reports(p["rehearsal_reports"]) if staging_first else [])
    refused = refusals(gates)
    result = {"changed": False, "gates": gates, "schema_fingerprint": schema_fingerprint, "refused": refused}
    if refused and not module.check_mode:
        module.fail_json(msg=f"{p['environment']}: refused before any change by " + "; ".join(refused), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
