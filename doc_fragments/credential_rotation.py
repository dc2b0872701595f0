"""Options shared by the credential_rotation_* modules (module_utils/credential_rotation_module.py)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  postgres:
    description: The Render Postgres instance, its ID (C(dpg-...)) or its exact name.
    type: str
    required: true
"""

    # The modules that only read Render, and that the role skips under --check (wait_idle, verify).
    READ_ONLY = r"""
attributes:
  check_mode:
    support: full
    description: Reads only, in check mode as in a real run (the role skips it in check mode).
  diff_mode:
    support: none
"""
