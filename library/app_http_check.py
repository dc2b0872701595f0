#!/usr/bin/python
"""Ask the app, from outside, whether a URL answers the expected status; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_http_check
short_description: GET one of the app's public URLs until it answers an expected status
description:
  - Sends C(GET) to O(target_url) (an http(s) URL, or a path joined to O(public_url)) until it answers one of
    O(expect_status), at most O(attempts) times, O(delay) seconds apart. Redirects are not followed.
  - The post-deploy proof uses it for maintenance mode seen from outside (C(503) while it is on), the health
    path and the frontend (C(200) after the deploy).
  - Never fails on the answer; RV(ok) and RV(msg) say how it went, so a C(no_log) caller can show why.
    Bad input (a relative path without a public URL) fails.
  - The URL shown in results is stripped of its query string (it may carry a token).
options:
  target_url:
    description: An http(s) URL, or a path starting with C(/) joined to O(public_url).
    type: str
    required: true
  public_url:
    description: The app's public URL (e.g. the service's C(serviceDetails.url)).
    type: str
    default: ""
  expect_status:
    description: The statuses that count as the answer wanted.
    type: list
    elements: int
    default: [200]
  attempts:
    description: How many times to ask at most.
    type: int
    default: 1
  delay:
    description: Seconds between attempts.
    type: float
    default: 5
  timeout:
    description: Seconds each request may take.
    type: float
    default: 10
attributes:
  check_mode:
    support: full
    description: Sends nothing and says what it would ask (in check mode nothing was deployed or switched).
  diff_mode:
    support: none
requirements: [requests]
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: The public URL answers 503 while maintenance mode is on
  app_http_check:
    target_url: /health
    public_url: "{{ service.serviceDetails.url }}"
    expect_status: [503]
    attempts: 6
    delay: 5
  register: maintenance_seen
"""

RETURN = r"""
ok:
  description: Whether the URL answered one of O(expect_status) (false in check mode).
  returned: always
  type: bool
url:
  description: The URL asked, without its query string.
  returned: always
  type: str
status:
  description: The last answer's HTTP status; null when it never answered or in check mode.
  returned: always
  type: int
attempts:
  description: How many requests were sent.
  returned: always
  type: int
planned:
  description: True in check mode (nothing was sent).
  returned: always
  type: bool
msg:
  description: What happened, e.g. C(http://host/health answered 200, expected 503 (after 6 attempts over 25 s)).
  returned: always
  type: str
"""

from ansible.module_utils.app_http import HAS_REQUESTS, join_url, probe, where
from ansible.module_utils.basic import AnsibleModule, missing_required_lib


def main():
    module = AnsibleModule(
        argument_spec={
            "target_url": {"type": "str", "required": True},
            "public_url": {"type": "str", "default": ""},
            "expect_status": {"type": "list", "elements": "int", "default": [200]},
            "attempts": {"type": "int", "default": 1},
            "delay": {"type": "float", "default": 5},
            "timeout": {"type": "float", "default": 10},
        },
        supports_check_mode=True,
    )
    p = module.params
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"))
    try:
        url = join_url(p["public_url"], p["target_url"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if p["attempts"] < 1 or p["delay"] < 0 or p["timeout"] <= 0 or not p["expect_status"]:
        module.fail_json(msg="attempts must be at least 1, delay not negative, timeout positive, and "
                             "expect_status must name a status")
    wanted = " or ".join(str(s) for s in p["expect_status"])
    if module.check_mode:
        module.exit_json(changed=False, ok=False, planned=True, url=where(url), status=None, attempts=0,
                         expected=p["expect_status"], msg=f"would GET {where(url)} and expect {wanted}")
    result = probe(url, expect=p["expect_status"], attempts=p["attempts"], delay=p["delay"], timeout=p["timeout"])
    module.exit_json(changed=False, planned=False, **result)


if __name__ == "__main__":
    main()
