#!/usr/bin/python
"""Read-only investigation of key-type drift; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_investigation
short_description: Investigate a PostgreSQL database whose key column types drifted from the app's models
description:
  - Reads the catalog only, inside one READ ONLY transaction, and reports what a key-type
    conversion would face; it never changes the database and always returns C(changed=false).
  - Finds key columns whose type differs from the expected one and every foreign key referencing
    them, the closure of FK-linked columns that must change type together, row counts (exact below
    a size threshold, estimates above), objects that block C(ALTER COLUMN TYPE), uuid-like columns
    without a foreign key, functions that mention the type, space and time needed, other sessions,
    and the true Alembic revision compared with the stored one.
options:
  schemas:
    description: Schemas whose tables are investigated.
    type: list
    elements: str
    default: [public]
  source_types:
    description: Type names (C(pg_type.typname)) of the drifted keys.
    type: list
    elements: str
    default: [uuid]
  expected_key_type:
    description: The key type the models expect, as C(format_type) prints it.
    type: str
    default: character varying(36)
  keys:
    description:
      - Key columns to check as C(schema.table.column). Empty means every primary-key
        column of a source type in O(schemas).
    type: list
    elements: str
    default: []
  alembic_revisions:
    description:
      - The revision chain with indicator tables, a list of dicts with C(revision),
        C(down_revision), C(tables) (created) and optionally C(dropped_tables) (dropped or
        renamed away). Wins over O(alembic_versions_dir).
    type: list
    elements: dict
    default: []
  alembic_versions_dir:
    description:
      - The app's Alembic C(versions/) directory, parsed with Python's ast to derive the chain
        from each C(upgrade())'s C(create_table), C(drop_table) and C(rename_table) calls.
    type: path
  exact_count_max_bytes:
    description: Tables up to this size get an exact C(count(*)); larger ones the planner's estimate.
    type: int
    default: 104857600
  long_transaction_seconds:
    description: Other sessions with a transaction open at least this long are warned about.
    type: int
    default: 60
  disk_size_gb:
    description: The server's disk (on Render, the plan's C(diskSizeGB)), to check the rewrite fits.
    type: float
  rewrite_mb_per_second:
    description: Assumed rewrite throughput for the time estimate.
    type: float
    default: 50.0
  report_title:
    description: Title of the Markdown report.
    type: str
    default: database
extends_documentation_fragment: [postgres_connection]
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Investigate the production database
  pg_investigation:
    database_url: "{{ recovery_database_url }}"
    alembic_versions_dir: "{{ app_checkout }}/migrations/versions"
  no_log: true
  register: findings
"""

RETURN = r"""
conversion_needed:
  description: Whether any key column (or FK-linked column) is not of the expected type.
  returned: always
  type: bool
findings:
  description: Everything found; see the role README for the keys.
  returned: always
  type: dict
report_markdown:
  description: The findings as a Markdown report.
  returned: always
  type: str
"""

from ansible.module_utils import pg_connection
from ansible.module_utils.alembic_history import HistoryError, parse_versions_dir
from ansible.module_utils.investigation import investigate
from ansible.module_utils.investigation_report import render_markdown
from ansible.module_utils.module_refusal import RefusingModule
from ansible.module_utils.pg_catalog import CatalogReader
from ansible.module_utils.pg_connection import (
    ConnectionFailure,
    connect,
    connection_argument_spec,
    ensure_psycopg2,
)


def database_error(exc) -> str:
    """The server's message's first line, with its SQLSTATE when it sent one."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"{text} (SQLSTATE {exc.pgcode})" if getattr(exc, "pgcode", None) else text


def _close_quietly(conn) -> None:
    """Read-only: nothing to keep, and a broken connection must not hide the real error."""
    try:
        conn.rollback()
        conn.close()
    except pg_connection.psycopg2.Error:
        pass


def main():
    argument_spec = connection_argument_spec() | {
        "schemas": {"type": "list", "elements": "str", "default": ["public"]},
        "source_types": {"type": "list", "elements": "str", "default": ["uuid"]},
        "expected_key_type": {"type": "str", "default": "character varying(36)"},
        "keys": {"type": "list", "elements": "str", "default": []},
        "alembic_revisions": {"type": "list", "elements": "dict", "default": []},
        "alembic_versions_dir": {"type": "path"},
        "exact_count_max_bytes": {"type": "int", "default": 100 * 1024 * 1024},
        "long_transaction_seconds": {"type": "int", "default": 60},
        "disk_size_gb": {"type": "float"},
        "rewrite_mb_per_second": {"type": "float", "default": 50.0},
        "report_title": {"type": "str", "default": "database"},
    }
    module = RefusingModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_psycopg2(module)
    params = module.params
    bad_keys = [k for k in params["keys"] if k.count(".") != 2]
    if bad_keys:
        module.fail_json(msg=f"keys must be schema.table.column, got: {', '.join(bad_keys)}")

    try:
        revisions = params["alembic_revisions"] or (
            parse_versions_dir(params["alembic_versions_dir"]) if params["alembic_versions_dir"] else None)
    except HistoryError as exc:
        module.fail_json(msg=str(exc))

    try:
        conn = connect(params)
    except ConnectionFailure as exc:
        module.fail_json(msg=str(exc))
    try:
        # One consistent, read-only snapshot for every query.
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        findings = investigate(
            CatalogReader(conn),
            schemas=params["schemas"], source_types=params["source_types"],
            expected_type=params["expected_key_type"], keys=params["keys"], revisions=revisions,
            exact_count_max_bytes=params["exact_count_max_bytes"],
            long_transaction_seconds=params["long_transaction_seconds"],
            disk_size_gb=params["disk_size_gb"], rewrite_mb_per_second=params["rewrite_mb_per_second"],
        )
    except (ValueError, HistoryError) as exc:
        module.fail_json(msg=str(exc))
    except pg_connection.psycopg2.Error as exc:
        # A permission error, timeout or lost connection mid-investigation:
        # one line from the server (it never holds the password), no traceback.
        module.fail_json(msg=f"the investigation stopped: {database_error(exc)}")
    finally:
        _close_quietly(conn)

    module.exit_json(
        changed=False,
        conversion_needed=findings["conversion_needed"],
        findings=findings,
        report_markdown=render_markdown(findings, title=params["report_title"]),
    )


if __name__ == "__main__":
    main()
