#!/usr/bin/python
"""Scan a Render service's recent logs for failure patterns; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: render_log_scan
short_description: Scan a Render service's logs of the last minutes for failure patterns
description:
  - Reads the service's log lines (C(GET /logs), newest first, at most O(max_lines)) of the last O(minutes),
    never older than O(since) (the deploy judged; without it, the newest live deploy's start), and matches
    each against O(patterns).
  - Never fails on a match; RV(ok), RV(hits) and RV(msg) name the lines (shortened, with O(secrets) and any
    password in a URL redacted), so a C(no_log) caller can show why. An API error or a pattern that is not a
    regular expression fails.
  - Read only. The logic is C(module_utils/log_scan.py).
options:
  service:
    description: The web service (C(srv-...)).
    type: str
    required: true
  patterns:
    description: Regular expressions (Python); a line matching one is a hit.
    type: list
    elements: str
    required: true
  minutes:
    description: How far back to read.
    type: float
    default: 30
  since:
    description: ISO 8601 time before which no line is judged (the deploy's C(createdAt)).
    type: str
  types:
    description: Only these log types (Render's C(app), C(build), C(request)); empty for all.
    type: list
    elements: str
    default: [app, build]
  max_lines:
    description: At most this many lines are read (the newest).
    type: int
    default: 2000
  secrets:
    description: Values that must never appear in a hit's line (for C(<scheme> <credentials>) header values, the
      credentials alone too).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Checks the patterns and says what it would read; reads nothing (nothing was deployed).
  diff_mode:
    support: none
extends_documentation_fragment: [render_api]
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: The deploy's logs hold no foreign-key violation, type error or traceback
  render_log_scan:
    service: "{{ render_service_id }}"
    since: "{{ deploy.deploy.createdAt }}"
    minutes: 30
    patterns: ["violates foreign key constraint", "operator does not exist", "Traceback \\(most recent call last\\)"]
  register: scan
"""

RETURN = r"""
ok:
  description: Whether no line matched (false in check mode).
  returned: always
  type: bool
lines_checked:
  description: How many lines were read and matched.
  returned: always
  type: int
complete:
  description: False when the window held more lines than O(max_lines) (only the newest were read).
  returned: always
  type: bool
start:
  description: The window's start (ISO 8601 UTC).
  returned: always
  type: str
matched:
  description: How many lines matched.
  returned: always
  type: int
hits:
  description: The first matching lines - timestamp, pattern, line (redacted, shortened).
  returned: always
  type: list
  elements: dict
msg:
  description: What was read and what matched.
  returned: always
  type: str
"""

from ansible.module_utils.log_scan import compile_patterns, scan_logs
from ansible.module_utils.redaction import credential_parts
from ansible.module_utils.render_module import render_argument_spec, run_module


def run(module, client):
    p = module.params
    try:
        compile_patterns(p["patterns"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if p["minutes"] <= 0 or p["max_lines"] < 1:
        module.fail_json(msg="minutes must be positive and max_lines at least 1")
    if module.check_mode:
        return {"changed": False, "ok": False, "planned": True, "lines_checked": 0, "complete": False,
                "start": None, "matched": 0, "hits": [],
                "msg": f"would scan the logs of {p['service']} of the last {p['minutes']:g} minutes for "
                       f"{len(p['patterns'])} failure patterns"}
    try:
        result = scan_logs(client, p["service"], patterns=p["patterns"], minutes=p["minutes"], since=p["since"],
                           types=p["types"], max_lines=p["max_lines"],
                           secrets=[*credential_parts(p["secrets"]), p["api_key"]])
    except ValueError as exc:  # a since that is no ISO 8601 time
        module.fail_json(msg=f"since must be an ISO 8601 time: {exc}")
    return {"changed": False, "planned": False, **result}


def argument_spec():
    spec = render_argument_spec()
    spec.update(
        service={"type": "str", "required": True},
        patterns={"type": "list", "elements": "str", "required": True},
        minutes={"type": "float", "default": 30},
        since={"type": "str"},
        types={"type": "list", "elements": "str", "default": ["app", "build"]},
        max_lines={"type": "int", "default": 2000},
        secrets={"type": "list", "elements": "str", "default": [], "no_log": True},
    )
    return spec


def main():
    run_module(argument_spec(), run)


if __name__ == "__main__":
    main()
