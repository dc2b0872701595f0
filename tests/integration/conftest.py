"""Fixtures of the integration tests that need a whole Render-like environment,
and those the backup tests share."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.integration.backup_support import new_source, params
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
