"""How a module says why it refused, so that the operator reads it although the task is no_log.

A task that passes a secret (a database URL, an API key) is ``no_log: true``, and Ansible then
hides its whole result, the failure message included, even at -vvv. So a module fails with its
reason twice: in ``msg`` (for a play without no_log) and in ``error``, which the roles read: they
register the no_log task with ``failed_when: false`` and fail in the next task with ``error``.
The reason never holds a secret: the modules build it from names, never from a URL or a
password, and Ansible masks every no_log value in the result besides.
"""

from __future__ import annotations


def refuse(module, reason: str, **result) -> None:
    """fail_json with the reason in ``msg`` and ``error``."""
    module.fail_json(msg=reason, error=reason, **result)
