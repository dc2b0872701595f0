"""Jinja filters over database URLs: mask_database_url, database_url_params, database_url_error,
secret_values.

The logic is module_utils/pg_url.py, loaded from its file so that modules and
filters share one implementation.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ansible.errors import AnsibleFilterError

_SPEC = importlib.util.spec_from_file_location(
    "render_key_recovery_pg_url", Path(__file__).resolve().parents[1] / "module_utils" / "pg_url.py")
_pg_url = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_pg_url)


def _wrap(func):
    def filter_(url):
        try:
            return func(url)
        except _pg_url.DatabaseUrlError as exc:
            raise AnsibleFilterError(str(exc)) from None
    filter_.__name__ = func.__name__
    filter_.__doc__ = func.__doc__
    return filter_


class FilterModule:
    def filters(self):
        return {
            "mask_database_url": _wrap(_pg_url.mask_database_url),
            "database_url_params": _wrap(_pg_url.database_url_params),
            # Never raises: the reason a URL is unusable, "" when it is fine.
            "database_url_error": _pg_url.database_url_error,
            # The values no report may hold: each credential, and a database URL's password alone.
            "secret_values": _pg_url.secret_values,
        }
