"""Reaching a database a backup is taken of, verified on or restored into:
connections whose failures are BackupError (libpq's first line, never a
password), the read-only snapshot transaction, and the live schema fingerprint
the gate compares with a backup's."""

from __future__ import annotations

import functools

from ansible.module_utils.pg_backup_store import BackupError
from ansible.module_utils.pg_catalog import CatalogReader
from ansible.module_utils.pg_catalog_fingerprint import fingerprint
from ansible.module_utils.pg_connection import ConnectionFailure, connect


def database_errors(func):
    """psycopg2 errors become BackupError with libpq's first line (never a password)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import psycopg2

        try:
            return func(*args, **kwargs)
        except psycopg2.Error as exc:
            text = str(exc).strip().splitlines()
            raise BackupError(f"database error: {text[0] if text else type(exc).__name__}") from None
    return wrapper


def connect_or_fail(params: dict, **kwargs):
    try:
        return connect(params, **kwargs)
    except ConnectionFailure as exc:
        raise BackupError(str(exc)) from None


def snapshot_transaction(params: dict):
    conn = connect_or_fail(params)
    conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
    return conn


@database_errors
def live_fingerprint(params: dict) -> str:
    """The schema fingerprint of the database as it is now (read-only)."""
    conn = snapshot_transaction(params)
    try:
        reader = CatalogReader(conn)
        return fingerprint(reader.schema_objects(reader.user_schemas()))
    finally:
        conn.rollback()
        conn.close()
