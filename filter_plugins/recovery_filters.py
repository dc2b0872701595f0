"""Every Jinja filter of this project. The rules are in module_utils/, loaded here
from their files (each stands alone, no imports of this project), so that modules
and filters share one implementation; this file only names them.

Never raise ("" or [] when the input is fine, else the reason, never a secret):
  database_url_problem, database_url_error, placeholder_error, render_settings_message,
  inventory_argument, inventory_vault_file, vault_file_error, directory_problems,
  leaked_api_key_error
Raise the refusal as the task's error:
  mask_database_url, database_url_params, strict_bool, on_off, render_settings_problems,
  role_argument_spec
Values:
  secret_values (a run's credentials for redaction: each, and a database URL's password
  alone), run_id (the id given, or a new one), recovery_resume_state (where a recovery stands)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ansible.errors import AnsibleFilterError

MODULE_UTILS = Path(__file__).resolve().parents[1] / "module_utils"


def _load(file: str):
    spec = importlib.util.spec_from_file_location(f"render_key_recovery_{Path(file).stem}", MODULE_UTILS / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_pg_url = _load("pg_url.py")
_inputs = _load("recovery_inputs.py")
_api_key = _load("credential_rotation_api_key.py")
_resume = _load("recovery_resume.py")
_run_id = _load("run_id.py")

# The refusals of those rules: the task fails with the reason, not a traceback.
REFUSALS = (_pg_url.DatabaseUrlError, _inputs.InputError)


def _raising(func):
    def filter_(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except REFUSALS as exc:
            raise AnsibleFilterError(str(exc)) from None
    filter_.__name__ = func.__name__
    filter_.__doc__ = func.__doc__
    return filter_


def database_url_problem(url, name: str) -> str:
    """Why the database URL given as ``name`` is unusable, never its value: a
    placeholder, or what is wrong with it; "" when it is fine. Safe to compute
    under no_log and show after."""
    placeholder = _inputs.placeholder_error(url, name)
    if placeholder:
        return placeholder
    error = _pg_url.database_url_error(url)
    return f"{name}: {error}" if error else ""


class FilterModule:
    def filters(self):
        return {
            "database_url_problem": database_url_problem,
            "database_url_error": _pg_url.database_url_error,
            "placeholder_error": _inputs.placeholder_error,
            "render_settings_message": _inputs.render_settings_message,
            "inventory_argument": _inputs.inventory_argument,
            "inventory_vault_file": _inputs.inventory_vault_file,
            "vault_file_error": _inputs.vault_file_error,
            "directory_problems": _inputs.directory_problems,
            "leaked_api_key_error": _api_key.leaked_api_key_error,
            "mask_database_url": _raising(_pg_url.mask_database_url),
            "database_url_params": _raising(_pg_url.database_url_params),
            "strict_bool": _raising(_inputs.strict_bool),
            "on_off": _raising(_inputs.on_off),
            "render_settings_problems": _raising(_inputs.render_settings_problems),
            "role_argument_spec": _raising(_inputs.role_argument_spec),
            "secret_values": _pg_url.secret_values,
            "run_id": _run_id.run_id_or_new,
            "recovery_resume_state": _resume.resume_state,
        }
