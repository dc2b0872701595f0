"""Jinja filter run_id: the id given, or a new one (module_utils/run_id.py, the one format).

    backup_run_id | run_id      ->  backup_run_id, or 20261124T014249Z (now, UTC) when empty
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "render_key_recovery_run_id", Path(__file__).resolve().parents[1] / "module_utils" / "run_id.py")
_run_id = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_run_id)


class FilterModule:
    def filters(self):
        return {"run_id": _run_id.run_id_or_new}
