"""How a module says why it failed, so that the operator reads it although the task is no_log.

A task that passes a secret (a database URL, an API key) is ``no_log: true``, and Ansible then
hides its whole result, the failure message included. So a module fails with its reason twice:
in ``msg`` (for a play without no_log) and in ``error``, which the roles read. Every role and
playbook surfaces it one way:

    - name: <the no_log task>
      <module>: ...
      register: __role_thing
      # no_log hides its result, a failure's reason included: the next task shows `error`.
      failed_when: false
      no_log: true

    - name: Stop when <it> failed, saying why
      ansible.builtin.fail:
        msg: "{{ __role_thing.error | default(__role_thing.msg) | default('<what failed>') }}"
      when: __role_thing.error is defined or __role_thing.<a key every success returns> is not defined

The reason never holds a secret: the modules build it from names, never from a URL or a
password, and Ansible masks every no_log value in the result besides.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


class RefusingModule(AnsibleModule):
    """An AnsibleModule whose every failure also carries its reason in ``error``: its own
    argument checks, a refusal, a Render or database error alike."""

    def fail_json(self, msg, **kwargs):
        kwargs.setdefault("error", msg)
        super().fail_json(msg=msg, **kwargs)


def refuse(module, reason: str, **result) -> None:
    """fail_json with the reason in ``msg`` and ``error``."""
    module.fail_json(msg=reason, error=reason, **result)
