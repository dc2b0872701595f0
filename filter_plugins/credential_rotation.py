"""Jinja filter leaked_api_key_error: recover.yml refuses a leaked Render API key before
its first change with the check the credential_rotation_plan module runs.

The rule is module_utils/credential_rotation_api_key.py, loaded from its file so that
the module and the filter share one implementation.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "render_key_recovery_api_key",
    Path(__file__).resolve().parents[1] / "module_utils" / "credential_rotation_api_key.py")
_api_key = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_api_key)


class FilterModule:
    def filters(self):
        # Never raises: "" when the key may be used, else what to do (never the key).
        return {"leaked_api_key_error": _api_key.leaked_api_key_error}
