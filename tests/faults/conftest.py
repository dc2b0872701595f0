"""Fixtures of the fault suite: a Render world on the simulator (one web service with two
leaked database users), the run's extra vars for the Render playbooks, and the figures
every test records for the README's "Faults" table."""

from __future__ import annotations

import contextlib
import json
import os
import secrets

import pytest

from localenv import cluster as pg
from localenv.render_sim import start, testing
from tests.faults.figures import Figures, write_figures

# The pre-deploy logs in with the service's DATABASE_URL, as the app's migrations do.
MIGRATE = ("python -c \"import os, psycopg2; c = psycopg2.connect(os.environ['DATABASE_URL']); "
           "c.autocommit = True; c.cursor().execute('CREATE TABLE IF NOT EXISTS migrated (id int)')\"")
VERSIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "demoapp", "migrations", "versions")
ALEMBIC_UPGRADE = "python -m alembic -c demoapp/alembic.ini upgrade head"


@pytest.fixture(scope="session")
def figures(request):
    """Figures measured by the suite. Under pytest-xdist each worker hands its rows to the
    controller (tests/conftest.py merges and writes them); run alone, they are written here."""
    collected = Figures()
    yield collected
    workeroutput = getattr(request.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["fault_figures"] = collected.rows
    else:
        write_figures(request.config, collected)


@contextlib.contextmanager
def render_world(pg_cluster, *, template: str | None = None):
    """A simulator world whose database has two leaked users (the newer the default, in the
    service's DATABASE_URL); extra vars for maintenance.yml, deploy.yml and rotate_credentials.yml.
    With a template: the database is a copy of it, owned by the cluster's app role (the run's
    recovery_database_url), and the pre-deploy runs the app's `alembic upgrade head`."""
    state, names = testing.make_state(pre_deploy_command=ALEMBIC_UPGRADE if template else MIGRATE)
    suffix = names["database"][len("sim_"):]
    leaked = [f"sim_{suffix}_app_a", f"sim_{suffix}_app_b"]
    state["postgres"][0]["credentials"] = leaked
    if template:
        state["postgres"][0]["databaseUser"] = pg_cluster.app_user
        pg.create_database(pg_cluster, names["database"], template=template)
    key = "rnd_test_" + secrets.token_urlsafe(16)
    server = start(state, pg_cluster, api_key=key)
    try:
        instance = server.sim.postgres[names["postgres"]]
        passwords = {c["username"]: c["password"] for c in instance.credentials}
        extra = {
            "recovery_environment": "local",  # poll and health intervals of 1 s
            "render_api_base_url": server.base_url,
            "render_api_key": key,
            "render_service_id": names["service"],
            "render_postgres_id": names["postgres"],
            "recovery_database_url": pg_cluster.url(names["database"], user=leaked[1],
                                                    password=passwords[leaked[1]]),
            "credential_rotation_leaked_users": leaked,
            "credential_rotation_services": [{"service": names["service"]}],
            # Roles are cluster-wide and worlds run side by side: a prefix of this world's own.
            "credential_rotation_user_prefix": f"rotated_{suffix}",
            "credential_rotation_run_id": "20260105",
            "credential_rotation_idle_timeout": 30,
        }
        if template:
            extra["recovery_database_url"] = pg_cluster.url(names["database"])
        yield {"server": server, "names": names, "key": key, "leaked": leaked, "passwords": passwords,
               "cluster": pg_cluster, "extra": extra, "control": testing.Control(server, key),
               "service": server.sim.services[names["service"]], "instance": instance,
               "new_user": f"rotated_{suffix}_20260105"}
    finally:
        server.stop()
        testing.drop_world(pg_cluster, server)


@pytest.fixture
def world(pg_cluster):
    with render_world(pg_cluster) as made:
        yield made


def recovery_vars(world, base_dir) -> dict:
    """The world's extra vars plus what recover.yml needs: the app's migrations, and reports
    and backups under base_dir."""
    return {**world["extra"], "investigate_alembic_versions_dir": VERSIONS_DIR,
            "investigate_report_dir": str(base_dir / "reports"), "convert_keys_report_dir": str(base_dir / "reports"),
            "convert_keys_backup_dir": str(base_dir / "backups"), "backup_dir": str(base_dir / "backups")}


def secret_forms(value: str) -> list[str]:
    """A secret as it could leak: plain, URL-encoded (quote and quote_plus), JSON-escaped."""
    from urllib.parse import quote, quote_plus

    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    return sorted(f for f in forms if len(f) >= 6)
