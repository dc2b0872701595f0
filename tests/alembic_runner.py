"""Run the demo app's real Alembic as Render's pre-deploy command would."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALEMBIC_INI = os.path.join(ROOT, "demoapp", "alembic.ini")


def alembic(url: str, *args: str) -> subprocess.CompletedProcess:
    """DATABASE_URL goes through the environment, never argv."""
    return subprocess.run([sys.executable, "-m", "alembic", "-c", ALEMBIC_INI, *args],
                          capture_output=True, text=True, timeout=300, cwd="/",
                          env={**os.environ, "DATABASE_URL": url})
