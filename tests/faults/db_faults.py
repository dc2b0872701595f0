"""Database-side fault helpers: find and terminate the conversion's backends, hold locks,
wait for a session state in pg_stat_activity (polled, never slept on blindly)."""

from __future__ import annotations

import time

import psycopg2

from tests.db_connections import dbname

# The module connects as application_name render-key-recovery and names its transaction
# "key conversion n/m relation" while it rewrites.
CONVERSION_BACKENDS = """
    SELECT pid, application_name, state, left(query, 120)
      FROM pg_stat_activity
     WHERE datname = %s AND pid <> pg_backend_pid()
       AND (application_name = 'render-key-recovery' OR application_name LIKE 'key conversion%%')"""


def admin(cluster, url):
    conn = psycopg2.connect(cluster.admin_url(dbname(url)), application_name="fault-suite admin")
    conn.autocommit = True
    return conn


def terminate_conversion(cluster, url) -> list[tuple]:
    """pg_terminate_backend on every backend of the conversion; what was killed."""
    with admin(cluster, url) as conn, conn.cursor() as cur:
        cur.execute(CONVERSION_BACKENDS, (dbname(url),))
        victims = cur.fetchall()
        for pid, *_ in victims:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    conn.close()
    return victims


def wait_for_backend(cluster, url, condition: str, *, timeout: float = 60.0) -> tuple:
    """Poll until a conversion backend matches the SQL condition (over pg_stat_activity)."""
    deadline = time.monotonic() + timeout
    conn = admin(cluster, url)
    try:
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute(CONVERSION_BACKENDS + f" AND ({condition})", (dbname(url),))
                found = cur.fetchone()
                if found:
                    return found
                time.sleep(0.05)
    finally:
        conn.close()
    raise AssertionError(f"no conversion backend with {condition} within {timeout} s")
