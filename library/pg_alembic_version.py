#!/usr/bin/python
"""Reset alembic_version to the revision the schema is really at; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_alembic_version
short_description: Reset alembic_version to the true revision, proven by the schema's indicator tables
description:
  - Computes the true revision from the app's Alembic history (the last revision whose indicator tables all exist)
    and replaces the stored one when they differ, in one transaction that locks C(alembic_version) and re-checks it.
  - Refuses, changing nothing, when the schema contradicts the history, when O(revision) is given and is not the
    true one, or when O(expected_stored) is given and does not match.
  - Creates C(alembic_version) as Alembic does when it is missing.
options:
  alembic_versions_dir:
    description: The app's Alembic C(versions/) directory, parsed with Python's ast.
    type: path
  alembic_revisions:
    description: The revision chain, each C({revision, down_revision, tables}); wins over O(alembic_versions_dir).
    type: list
    elements: dict
    default: []
  revision:
    description: The revision to set; it must equal the true one (a guard against a wrong history).
    type: str
  expected_stored:
    description: Only reset when the stored revisions are exactly these (a guard against a concurrent change).
    type: list
    elements: str
extends_documentation_fragment: [postgres_connection]
attributes:
  check_mode:
    support: full
    description: Compares stored and true revisions; writes nothing.
  diff_mode:
    support: full
    description: The stored revision before and after.
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Reset alembic_version to the true revision
  pg_alembic_version:
    database_url: "{{ recovery_database_url }}"
    alembic_versions_dir: /srv/app/migrations/versions
  no_log: true
"""

RETURN = r"""
error:
  description:
    - Why the module refused or failed (the same text as C(msg)); never holds a secret. A role runs this no_log
      task with C(failed_when) false and fails with this reason in the next task, so the operator reads it.
  returned: on failure
  type: str
stored:
  description: The revisions stored before.
  returned: always
  type: list
revision:
  description: The true revision, now stored.
  returned: always
  type: str
pending:
  description: Revisions an C(alembic upgrade head) will apply next.
  returned: always
  type: list
executed_sql:
  description: Statements executed.
  returned: always
  type: list
"""

from ansible.module_utils.alembic_history import HistoryError, parse_versions_dir
from ansible.module_utils.alembic_reset import ResetRefused, apply, decide
from ansible.module_utils.module_refusal import RefusingModule, refuse
from ansible.module_utils.pg_catalog import CatalogReader
from ansible.module_utils.pg_connection import (
    ConnectionFailure,
    connect,
    connection_argument_spec,
    ensure_psycopg2,
)


def main():
    argument_spec = connection_argument_spec() | {
        "alembic_versions_dir": {"type": "path"},
        "alembic_revisions": {"type": "list", "elements": "dict", "default": []},
        "revision": {"type": "str"},
        "expected_stored": {"type": "list", "elements": "str"},
    }
    module = RefusingModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[("alembic_versions_dir", "alembic_revisions")])
    ensure_psycopg2(module)
    p = module.params
    try:
        revisions = p["alembic_revisions"] or parse_versions_dir(p["alembic_versions_dir"])
    except HistoryError as exc:
        refuse(module, str(exc))
    try:
        conn = connect(p)
    except ConnectionFailure as exc:
        refuse(module, str(exc))
    try:
        reader = CatalogReader(conn)
        try:
            decision = decide(reader, revisions, wanted=p["revision"], expected_stored=p["expected_stored"])
        except (ResetRefused, HistoryError) as exc:
            refuse(module, str(exc))
        result = {"changed": decision["changed"], "stored": decision["stored"], "revision": decision["target"],
                  "pending": decision["history"]["pending"], "executed_sql": []}
        if module._diff and decision["changed"]:
            result["diff"] = {"before": "\n".join(decision["stored"]) + "\n", "after": decision["target"] + "\n"}
        if decision["changed"] and not module.check_mode:
            conn.rollback()
            try:
                result["executed_sql"] = apply(conn, reader, decision)
            except ResetRefused as exc:
                refuse(module, str(exc))
        module.exit_json(**result)
    finally:
        conn.rollback()
        conn.close()


if __name__ == "__main__":
    main()
