"""The local Render-like cluster: the product's throwaway cluster plus an app owner.

What makes it Render-like:
- connections only over SSL (a self-signed certificate, clients verify it),
- scram-sha-256 for every login, no trust lines
  (both from module_utils/pg_scratch_cluster.py, the cluster restore verification uses),
- the application connects as a non-superuser login role that owns its database
  and nothing else (NOSUPERUSER NOCREATEDB NOCREATEROLE).

The cluster's state (port, paths, generated passwords) lives in ``state.json``
inside the cluster directory, mode 0600, so a later process can find it again.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from ansible.module_utils import pg_scratch_cluster as scratch
from ansible.module_utils.pg_scratch_cluster import (  # noqa: F401 -- this module's interface
    STATE_FILE,
    SUPERUSER,
    ClusterError,
    free_port,
)


@dataclass(kw_only=True)
class Cluster(scratch.ScratchCluster):
    app_user: str
    app_password: str = field(repr=False)
    app_database: str

    def url(self, database: str | None = None, *, user: str | None = None,
            password: str | None = None) -> str:
        """A libpq URL as Render hands it out (the app owner's by default), plus the CA to verify against."""
        user = user or self.app_user
        if password is None:
            password = self.superuser_password if user == SUPERUSER else self.app_password
        return super().url(database or self.app_database, user=user, password=password)


def find_bin_dir() -> str:
    """The newest installed PostgreSQL server binaries, or what to run to get them."""
    try:
        return scratch.find_bin_dir()
    except ClusterError:
        raise ClusterError(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found. "
            "On Debian/Ubuntu run `make setup` as root (it installs the `postgresql` package), "
            "or install it yourself: `apt-get install postgresql`. Elsewhere install the "
            "PostgreSQL server package and put its bin directory on PATH."
        ) from None


def create(base_dir: str | None = None, *, app_user: str = "app_owner",
           app_database: str = "appdb") -> Cluster:
    """initdb a new cluster, configure it like Render, start it, create the app owner."""
    find_bin_dir()  # this harness's own advice when the binaries are missing

    def make(**core) -> Cluster:
        return Cluster(**core, app_user=app_user, app_password=secrets.token_urlsafe(24),
                       app_database=app_database)

    return scratch.create(base_dir, prefix="render-like-pg-", make=make, then=_create_app_owner)


def _create_app_owner(cluster: Cluster) -> None:
    import psycopg2
    from psycopg2 import sql

    with psycopg2.connect(cluster.admin_url()) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                        "NOREPLICATION PASSWORD %s").format(sql.Identifier(cluster.app_user)),
                [cluster.app_password],
            )
    create_database(cluster, cluster.app_database)


def create_database(cluster: Cluster, name: str, *, template: str | None = None) -> None:
    """A database owned by the app role, as Render creates it (superuser work)."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(cluster.admin_url())
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            statement = sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(cluster.app_user))
            if template:
                statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            # The owner gets CREATE on public through pg_database_owner (PG15+).
            cur.execute(statement)
    finally:
        conn.close()


def drop_database(cluster: Cluster, name: str) -> None:
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(cluster.admin_url())
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
    finally:
        conn.close()


def wait_ready(cluster: Cluster, timeout: float = 30.0) -> None:
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(cluster.url(), connect_timeout=3).close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
