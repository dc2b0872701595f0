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
from tests.faults.figures import Figures, terminal_summary, write_figures  # noqa: E402
from tests.schedule import longest_first  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Longest test files first (with `--dist loadfile --no-loadscope-reorder` pytest-xdist
    hands out files in this order), so no long file starts last while the other worker idles."""
    items[:] = longest_first(items)


# The fault suite's figures: pytest-xdist workers send theirs (tests/faults/conftest.py); the
# controller merges them and writes one summary.
def pytest_configure(config):
    config._fault_figures_merged = None


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    rows = getattr(node, "workeroutput", {}).get("fault_figures")
    if rows:
        if node.config._fault_figures_merged is None:
            node.config._fault_figures_merged = Figures()
        node.config._fault_figures_merged.merge(rows)


def pytest_sessionfinish(session):
    merged = getattr(session.config, "_fault_figures_merged", None)
    if merged is not None:
        write_figures(session.config, merged)


def pytest_terminal_summary(terminalreporter, config):
    terminal_summary(terminalreporter, config)


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
