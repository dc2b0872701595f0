"""Options shared by the credential_rotation_* modules (module_utils/credential_rotation_module.py)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  postgres:
    description: The Render Postgres instance, its ID (C(dpg-...)) or its exact name.
    type: str
    required: true
"""
