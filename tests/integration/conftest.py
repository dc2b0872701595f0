"""Fixtures of the integration tests that need a whole Render-like environment,
and those the backup tests and the object-kind conversion tests share."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import closing

import psycopg2
import pytest

from tests.integration.backup_support import new_source, params
from tests.integration.convert_objects_support import run_sql
from tests.playbook_runner import ROOT, run_playbook


@pytest.fixture
def environment(tmp_path):
    state = tmp_path / "localenv"
    subprocess.run([sys.executable, "-m", "localenv", "--dir", str(state), "up"], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    try:
        yield {name: (state / name).read_text().strip()
               for name in ("recovery_database_url", "render_api_url", "render_api_key", "app_api_token")}
    finally:
        subprocess.run([sys.executable, "-m", "localenv", "--dir", str(state), "down"], cwd=ROOT,
                       capture_output=True, timeout=120)


# -- the backup tests' (test_backup*.py) -------------------------------------------

@pytest.fixture(scope="module")
def source(request, pg_cluster):
    return new_source(request, pg_cluster)


@pytest.fixture(scope="module")
def scratch(pg_cluster):
    return params(pg_cluster.admin_url())


@pytest.fixture
def pb(tmp_path, scratch):
    def run(playbook, url, **kwargs):
        extra = {"recovery_database_url": url, "backup_dir": str(tmp_path / "backups"),
                 "backup_scratch_url": scratch["database_url"], **kwargs.pop("extra", {})}
        return run_playbook(playbook, extra, **kwargs)
    run.store = tmp_path / "backups"
    return run


# -- the object-kind conversion tests' (test_convert_keys_objects.py, test_convert_keys_categories.py)

@pytest.fixture
def make_role(pg_cluster, make_database):
    """Factory: a NOLOGIN role (optionally granted to the app owner, as Render
    cannot but a cluster admin can); everything it owns is dropped afterwards.
    Depends on make_database so it is torn down before the databases go."""
    created = []

    def factory(member: bool) -> str:
        name = "Role " + os.urandom(4).hex()
        run_sql(pg_cluster.admin_url(), f'CREATE ROLE "{name}" NOLOGIN')
        created.append(name)
        if member:
            run_sql(pg_cluster.admin_url(), f'GRANT "{name}" TO "{pg_cluster.app_user}"')
        return name

    yield factory
    if not created:
        return
    owned = ", ".join(f'"{name}"' for name in created)
    with closing(psycopg2.connect(pg_cluster.admin_url())) as admin:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'")
            for (db,) in cur.fetchall():
                run_sql(pg_cluster.admin_url(db), f"DROP OWNED BY {owned}")
            cur.execute(f"DROP ROLE {owned}")
