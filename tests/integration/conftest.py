"""Fixtures of the integration tests that need a whole Render-like environment."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.playbook_runner import ROOT


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
