"""Shared fixtures: one Render-like PostgreSQL cluster per test session.

Every database test runs against a real server over SSL with scram-sha-256 as
the non-superuser owner role, never a mock.
"""

from __future__ import annotations

import os
import sys
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import ansible.module_utils  # noqa: E402

# Modules import our shared code as ansible.module_utils.<name>, as Ansible ships
# it; make the same import path work in-process for unit tests.
if os.path.join(ROOT, "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(os.path.join(ROOT, "module_utils"))

from localenv import cluster as pg  # noqa: E402


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = pg.create()
    try:
        yield cluster
    finally:
        cluster.stop(remove=True)


@pytest.fixture
def make_database(pg_cluster):
    """Factory: a new empty database owned by the app role; dropped afterwards."""
    created = []

    def factory(template: str | None = None) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        pg.create_database(pg_cluster, name, template=template)
        created.append(name)
        return pg_cluster.url(name)

    yield factory
    for name in created:
        pg.drop_database(pg_cluster, name)


@pytest.fixture(scope="session")
def broken_template(pg_cluster):
    """The production-shaped broken fixture, built once, cloned per test."""
    from demoapp import fixture

    name = "broken_fixture_template"
    pg.create_database(pg_cluster, name)
    fixture.build(pg_cluster.url(name), scale=1)
    return name


@pytest.fixture
def broken_db(make_database, broken_template):
    """A fresh copy of the broken fixture: its URL (app owner, SSL)."""
    return make_database(template=broken_template)
