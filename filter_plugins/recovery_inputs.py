"""Jinja filters for the run's inputs: placeholder_error, strict_bool, on_off,
render_settings_problems, render_settings_message, inventory_argument, inventory_vault_file,
vault_file_error, role_argument_spec, directory_problems.

The rules are module_utils/recovery_inputs.py, loaded from its file so that modules
and filters share one implementation.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ansible.errors import AnsibleFilterError

_SPEC = importlib.util.spec_from_file_location(
    "render_key_recovery_inputs", Path(__file__).resolve().parents[1] / "module_utils" / "recovery_inputs.py")
_inputs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_inputs)


def _raising(func):
    def filter_(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except _inputs.InputError as exc:
            raise AnsibleFilterError(str(exc)) from None
    filter_.__name__ = func.__name__
    filter_.__doc__ = func.__doc__
    return filter_


class FilterModule:
    def filters(self):
        return {
            # Never raise: "" (or []) when the input is fine, else the reason.
            "placeholder_error": _inputs.placeholder_error,
            "render_settings_message": _inputs.render_settings_message,
            "inventory_argument": _inputs.inventory_argument,
            "directory_problems": _inputs.directory_problems,
            "inventory_vault_file": _inputs.inventory_vault_file,
            "vault_file_error": _inputs.vault_file_error,
            # Raise the refusal as the task's error.
            "strict_bool": _raising(_inputs.strict_bool),
            "on_off": _raising(_inputs.on_off),
            "render_settings_problems": _raising(_inputs.render_settings_problems),
            "role_argument_spec": _raising(_inputs.role_argument_spec),
        }
