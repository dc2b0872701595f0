"""Jinja filters for the run's inputs: placeholder_error, strict_bool, on_off,
render_settings_problems, render_settings_message, inventory_argument, inventory_vault_file,
vault_file_error, role_argument_spec, directory_problems, database_url_problem.

The rules are module_utils/recovery_inputs.py (and module_utils/pg_url.py for a
database URL), loaded from their files so that modules and filters share one
implementation.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ansible.errors import AnsibleFilterError


def _load(name: str, file: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "module_utils" / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_inputs = _load("render_key_recovery_inputs", "recovery_inputs.py")
_pg_url = _load("render_key_recovery_pg_url", "pg_url.py")


def database_url_problem(url, name: str) -> str:
    """Why the database URL given as ``name`` is unusable, never its value: a
    placeholder, or what is wrong with it; "" when it is fine. Safe to compute
    under no_log and show after."""
    placeholder = _inputs.placeholder_error(url, name)
    if placeholder:
        return placeholder
    error = _pg_url.database_url_error(url)
    return f"{name}: {error}" if error else ""


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
            "database_url_problem": database_url_problem,
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
