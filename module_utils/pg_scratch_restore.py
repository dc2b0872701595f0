"""A verified backup restored into a new database on a scratch server, dropped afterwards.

Restore verification compares such a restore with the manifest; the conversion's
rehearsal runs the real plan on one. Both need the same guarantees: never the
backed-up server, one transaction (--single-transaction --exit-on-error), roles
the backup's policies name created only when missing (and dropped again), and the
scratch database dropped whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time

from ansible.module_utils.pg_backup_store import CUSTOM_FILE, DIRECTORY_NAME, BackupError
from ansible.module_utils.pg_catalog import CatalogReader
from ansible.module_utils.pg_client_programs import client_version, find_client, first_error, libpq_env, run_client
from ansible.module_utils.pg_connection import ConnectionFailure, connect, resolve_connection

# Index builds and FK validation dominate a restore; give them memory (scratch server only).
RESTORE_OPTIONS = "-c maintenance_work_mem=256MB -c work_mem=64MB -c synchronous_commit=off"


def archive_path(path: str, manifest: dict) -> str:
    return os.path.join(path, CUSTOM_FILE if manifest["format"] == "custom" else DIRECTORY_NAME)


def check_restore_versions(manifest: dict, pg_restore: str, server: dict, where: str) -> dict:
    version = client_version(pg_restore)
    if version["major"] < manifest["pg_dump_major"]:
        raise BackupError(f"pg_restore {version['text']} is older than the pg_dump "
                          f"{manifest['pg_dump_version']} that wrote this backup: use client tools of "
                          f"major version {manifest['pg_dump_major']} or newer")
    if server["major"] < manifest["server_major"]:
        raise BackupError(f"{where} runs PostgreSQL {server['text']}, older than the backed-up server "
                          f"({manifest['server_version']}): restore onto major version "
                          f"{manifest['server_major']} or newer")
    return version


def _connect(params: dict, **kwargs):
    try:
        return connect(params, **kwargs)
    except ConnectionFailure as exc:
        raise BackupError(str(exc)) from None


def scratch_params(scratch: dict, dbname: str) -> dict:
    """Connection parameters of database dbname on the scratch server (its role, its password)."""
    resolved = resolve_connection(scratch)
    return {k: v for k, v in resolved.items() if k != "database_url"} | {"login_db": dbname}


def _locale_clause(cur, locale: str | None):
    """LC_COLLATE/LC_CTYPE for the scratch database: the asked-for locale where the
    scratch server has it (a rehearsal's index builds then cost what they will cost),
    else "C". Returns (clause, locale used)."""
    from psycopg2 import sql

    if locale and locale != "C":
        cur.execute("SELECT 1 FROM pg_collation WHERE collname = %s OR collname = lower(%s)",
                    (locale, locale.replace("UTF-8", "utf8")))
        if cur.fetchone():
            return sql.SQL("LC_COLLATE {0} LC_CTYPE {0}").format(sql.Literal(locale)), locale
    return sql.SQL("LC_COLLATE 'C' LC_CTYPE 'C'"), "C"


@contextlib.contextmanager
def scratch_restore(path: str, manifest: dict, scratch: dict, *, bin_dir: str | None = None,
                    purpose: str = "verify", locale: str | None = None):
    """Restore the backup at path into a new database on the scratch server; yield
    (connection parameters of it, details); drop it (and any role created) on exit."""
    from psycopg2 import sql

    pg_restore = find_client("pg_restore", bin_dir)
    admin = _connect(scratch, autocommit=True)
    name = f"rkr_{purpose}_{secrets.token_hex(6)}"
    created_db = False
    created_roles: list[str] = []
    try:
        server = CatalogReader(admin).server_version()
        check_restore_versions(manifest, pg_restore, server, "the scratch server")
        with admin.cursor() as cur:
            cur.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user")
            superuser, createdb, createrole = cur.fetchone()
            if not (superuser or createdb):
                raise BackupError("the scratch server's role may not create databases: give it CREATEDB "
                                  "or use the local throwaway cluster")
            for role in manifest.get("policy_roles", []):
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if cur.fetchone():
                    continue
                if not (superuser or createrole):
                    raise BackupError(f"the backup's policies name role {role!r}, missing on the scratch "
                                      f"server, and its role may not create it")
                cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
                created_roles.append(role)
            clause, used_locale = _locale_clause(cur, locale)
            cur.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING %s {}").format(
                sql.Identifier(name), clause), (manifest["encoding"],))
            created_db = True
        target = scratch_params(scratch, name)
        env = libpq_env(target, application=f"render-key-recovery {purpose}")
        env["PGOPTIONS"] = RESTORE_OPTIONS
        clock = time.monotonic()
        proc = run_client([pg_restore, "--no-password", "--single-transaction", "--exit-on-error",
                           "--no-owner", "--no-privileges", "--no-subscriptions", "--no-security-labels",
                           f"--dbname={name}", archive_path(path, manifest)], env)
        seconds = time.monotonic() - clock
        if proc.returncode != 0:
            raise BackupError(f"{path}: restore into a scratch database failed (nothing kept): "
                              f"{first_error(proc.stderr)}")
        yield target, {"restore_seconds": round(seconds, 3), "scratch_server": server["text"],
                       "locale": used_locale}
    finally:
        with admin.cursor() as cur:
            if created_db:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            for role in created_roles:
                cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        admin.close()
