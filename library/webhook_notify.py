#!/usr/bin/python
"""Notify a webhook of a run's start or end; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: webhook_notify
short_description: Tell a webhook (JSON POST, Slack-compatible text) that a run started, succeeded or failed
description:
  - POSTs one JSON object with C(text) (what Slack and compatible chat webhooks show) and the same facts as fields
    (C(event), C(environment), C(step), C(duration_seconds), C(report), C(message)).
  - Every string of the payload is passed through redaction with O(secrets) (plain and URL-encoded) and any
    credential a URL carries is masked, so no secret leaves in a notification.
  - A notification never decides the run - an unreachable or failing receiver is returned in RV(delivered) and
    RV(error), never as a failure; only bad input fails.
  - Never reports a change.
options:
  url:
    description: The webhook's URL (a secret - a Slack webhook's path is its key).
    type: str
    required: true
  event:
    description: What happened.
    type: str
    required: true
    choices: [start, success, failure]
  environment:
    description: The app environment's name.
    type: str
    required: true
  step:
    description: The step the run is at (where it stopped, for C(failure)).
    type: str
    default: ""
  duration_seconds:
    description: How long the run has taken.
    type: float
  report:
    description: Where the run report is.
    type: str
    default: ""
  message:
    description: One line more (a failure's reason), redacted like the rest.
    type: str
    default: ""
  secrets:
    description: Values that must never appear in the payload (the run's database URL, API key...).
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to wait for the receiver.
    type: float
    default: 10
attributes:
  check_mode:
    support: full
    description: Builds the payload and sends nothing.
  diff_mode:
    support: none
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Tell the team the recovery failed
  webhook_notify:
    url: "{{ recovery_webhook_url }}"
    event: failure
    environment: production
    step: Convert the keys and every FK-linked column
    report: reports/production/20261204T101500Z/run-report.md
    secrets: ["{{ recovery_database_url }}", "{{ render_api_key }}"]
  no_log: true
"""

RETURN = r"""
delivered:
  description: Whether the receiver answered 2xx.
  returned: always
  type: bool
status:
  description: The receiver's HTTP status (null when it could not be reached or in check mode).
  returned: always
  type: int
error:
  description: Why it was not delivered (never the URL).
  returned: always
  type: str
payload:
  description: What was (or in check mode would be) sent, already redacted.
  returned: always
  type: dict
"""

from ansible.module_utils.module_refusal import RefusingModule
from ansible.module_utils.webhook_notify import EVENTS, build_payload, deliver


def main():
    module = RefusingModule(
        argument_spec={
            "url": {"type": "str", "required": True, "no_log": True},
            "event": {"type": "str", "required": True, "choices": list(EVENTS)},
            "environment": {"type": "str", "required": True},
            "step": {"type": "str", "default": ""},
            "duration_seconds": {"type": "float"},
            "report": {"type": "str", "default": ""},
            "message": {"type": "str", "default": ""},
            "secrets": {"type": "list", "elements": "str", "default": [], "no_log": True},
            "timeout": {"type": "float", "default": 10},
        },
        supports_check_mode=True,
    )
    p = module.params
    if not p["url"].lower().startswith(("https://", "http://")):
        module.fail_json(msg="the webhook URL must start with https:// (or http://)")
    payload = build_payload(event=p["event"], environment=p["environment"], step=p["step"],
                            duration_seconds=p["duration_seconds"], report=p["report"], message=p["message"],
                            secrets=[*p["secrets"], p["url"]])
    if module.check_mode:
        module.exit_json(changed=False, delivered=False, status=None, error="check mode: nothing sent",
                         payload=payload)
    module.exit_json(changed=False, payload=payload, **deliver(p["url"], payload, timeout=p["timeout"]))


if __name__ == "__main__":
    main()
