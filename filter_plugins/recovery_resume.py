"""Jinja filter recovery_resume_state: where a recovery stands (module_utils/recovery_resume.py).

    {{ investigate_result.findings | recovery_resume_state(newest_deploy, recovery_uses_render) }}
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "render_key_recovery_resume", Path(__file__).resolve().parents[1] / "module_utils" / "recovery_resume.py")
_resume = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_resume)


class FilterModule:
    def filters(self):
        return {"recovery_resume_state": _resume.resume_state}
