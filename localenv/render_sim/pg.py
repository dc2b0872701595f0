"""The real PostgreSQL behind the simulator's Render Postgres instances.

A Render Postgres instance is one database on the throwaway cluster. Its credentials are
real login roles:

- the instance's first user (``databaseUser`` in the state file) owns the database;
- a credential created through the API is a new LOGIN role that is a member of the owner
  role and whose sessions run as the owner (``ALTER ROLE .. IN DATABASE .. SET role``), so it
  can use every table the app has and the tables it creates stay owned by the owner;
- deleting a credential terminates its sessions and drops its role; the owner role cannot be
  dropped while it owns the database, so deleting the *first* user removes its LOGIN and its
  password instead. Either way the old password stops working at once.
"""

from __future__ import annotations

import psycopg2
from psycopg2 import sql


def _admin(cluster, database="postgres"):
    conn = psycopg2.connect(cluster.admin_url(database), connect_timeout=10)
    conn.autocommit = True
    return conn


def server_version(cluster) -> str:
    conn = _admin(cluster)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version_num")
            return str(int(cur.fetchone()[0]) // 10000)
    finally:
        conn.close()


def role_exists(cur, name: str) -> bool:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
    return cur.fetchone() is not None


def ensure_instance(cluster, database: str, user: str, password: str) -> str:
    """Create (or take over) the instance's first user and database; return the owner role.

    The first user gets ``password`` and LOGIN. The database is created owned by it when
    missing; an existing database keeps its owner, and a first user that is not that owner
    is made a member of it like any other credential.
    """
    conn = _admin(cluster)
    try:
        with conn.cursor() as cur:
            if role_exists(cur, user):
                cur.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(user)),
                            [password])
            else:
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                                    "NOREPLICATION PASSWORD %s").format(sql.Identifier(user)), [password])
            cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", [database])
            row = cur.fetchone()
            if row is None:
                cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(user)))
                owner = user
            else:
                owner = row[0]
    finally:
        conn.close()
    if owner != user:
        _grant_like_owner(cluster, database, owner, user)
    return owner


def _grant_like_owner(cluster, database: str, owner: str, user: str) -> None:
    conn = _admin(cluster)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(owner), sql.Identifier(user)))
            cur.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} SET role = {}").format(
                sql.Identifier(user), sql.Identifier(database), sql.Literal(owner)))
    finally:
        conn.close()


def create_credential(cluster, database: str, owner: str, user: str, password: str, *,
                      existing_ok: bool = False) -> None:
    """A new login role with the owner's privileges (see the module docstring).

    ``existing_ok``: a role left by an earlier simulator on the same cluster (users seeded
    from the state file) gets the new password instead, so a restart works.
    """
    conn = _admin(cluster)
    try:
        with conn.cursor() as cur:
            if existing_ok and role_exists(cur, user):
                cur.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(user)),
                            [password])
            else:
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                                    "NOREPLICATION PASSWORD %s").format(sql.Identifier(user)), [password])
    finally:
        conn.close()
    _grant_like_owner(cluster, database, owner, user)


def delete_credential(cluster, database: str, owner: str, user: str) -> None:
    """Kill the user's sessions and make its password useless: drop it, or NOLOGIN the owner."""
    conn = _admin(cluster)
    try:
        with conn.cursor() as cur:
            if user == owner:
                cur.execute(sql.SQL("ALTER ROLE {} NOLOGIN PASSWORD NULL").format(sql.Identifier(user)))
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [user])
    finally:
        conn.close()
    if user == owner:
        return
    db_conn = _admin(cluster, database)
    try:
        with db_conn.cursor() as cur:
            cur.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(
                sql.Identifier(user), sql.Identifier(owner)))
            cur.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(user)))
    finally:
        db_conn.close()
    conn = _admin(cluster)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(user)))
    finally:
        conn.close()


def open_connections(cluster, database: str) -> dict[str, int]:
    conn = _admin(cluster)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT usename, count(*) FROM pg_stat_activity WHERE datname = %s "
                        "AND usename IS NOT NULL GROUP BY usename", [database])
            return {name: int(count) for name, count in cur.fetchall()}
    finally:
        conn.close()


def role_taken(cluster, user: str) -> bool:
    conn = _admin(cluster)
    try:
        with conn.cursor() as cur:
            return role_exists(cur, user)
    finally:
        conn.close()
