#!/usr/bin/python
"""Smoke requests through the app's API after a deploy, then their cleanup; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_smoke
short_description: Send smoke requests through the app's API, capturing fields for later ones, then clean up
description:
  - Sends O(requests) in order, each with O(headers) and its own headers, its JSON body, and checks its status;
    fields of a JSON answer named in C(capture) are used by later requests as C(${name}) in their URL, header
    values and body. The first request that fails stops the smoke requests.
  - Then sends every O(cleanup) request, even after a failure; one that needs a C(${name}) never captured (its
    create failed) is skipped, saying so.
  - Before sending anything, refuses requests that use a C(${name}) no earlier request captures, two requests of
    one name, a CHANGE_ME placeholder in a header, or a relative URL without O(public_url).
  - Never fails on an answer; RV(ok) and RV(msg) name the request that failed, so a C(no_log) caller can show
    why. No header value (nor a captured value a header carries) appears in a result; URLs are shown without
    their query string. The logic is C(module_utils/app_smoke.py).
options:
  requests:
    description: The smoke requests, in order.
    type: list
    elements: dict
    default: []
    suboptions: &request
      name:
        description: What the request proves; named in results and messages.
        type: str
        required: true
      method:
        description: The HTTP method.
        type: str
        default: GET
        choices: [GET, HEAD, POST, PUT, PATCH, DELETE]
      url:
        description: An http(s) URL or a path joined to O(public_url); may use C(${name}).
        type: str
        required: true
      headers:
        description: Headers of this request (secrets); values may use C(${name}).
        type: dict
        default: {}
      body:
        description: Sent as JSON; string values may use C(${name}) (exactly C(${name}) keeps the captured type).
        type: raw
      status:
        description: The status (or statuses) it must answer.
        type: list
        elements: int
        default: [200]
      capture:
        description: Names mapped to dotted paths of fields of the JSON answer (C(id), C(data.items.0.id)).
        type: dict
        default: {}
  cleanup:
    description: Requests that always run after the smoke requests, in order (e.g. deleting what they created).
    type: list
    elements: dict
    default: []
    suboptions: *request
  headers:
    description: Headers sent with every request (secrets, from the vault), e.g. C(Authorization).
    type: dict
    default: {}
  public_url:
    description: The app's public URL that relative request URLs are joined to.
    type: str
    default: ""
  timeout:
    description: Seconds each request may take.
    type: float
    default: 10
  secrets:
    description: More values that must never appear in a result.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Checks the requests and says what would be sent; sends nothing.
  diff_mode:
    support: none
requirements: [requests]
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Create an organization and a deal through the API, then delete them
  app_smoke:
    public_url: https://app.example.com
    headers:
      Authorization: "Bearer {{ vault_app_smoke_token }}"
    requests:
      - {name: create organization, method: POST, url: /api/organizations, body: {name: smoke}, status: 201,
         capture: {org_id: id}}
      - {name: create deal, method: POST, url: /api/deals, body: {organization_id: "${org_id}"}, status: 201,
         capture: {deal_id: id}}
    cleanup:
      - {name: delete deal, method: DELETE, url: "/api/deals/${deal_id}", status: [204, 404]}
      - {name: delete organization, method: DELETE, url: "/api/organizations/${org_id}", status: [204, 404]}
  register: smoke
  no_log: true
"""

RETURN = r"""
ok:
  description: Whether every smoke and cleanup request answered as expected (false in check mode).
  returned: always
  type: bool
requests:
  description: Each request - name, phase (smoke or cleanup), method, url, expected, status, ok, skipped, captured
    (names), msg.
  returned: always
  type: list
  elements: dict
failed_request:
  description: The name of the smoke request that failed, or null.
  returned: always
  type: str
cleanup_failed:
  description: The names of the cleanup requests that failed (test data may be left).
  returned: always
  type: list
  elements: str
planned:
  description: In check mode, what would be sent (method, URL, expectation; never a header value).
  returned: always
  type: list
  elements: str
msg:
  description: What failed and what the cleanup did, or that every request passed.
  returned: always
  type: str
"""

from ansible.module_utils.app_http import HAS_REQUESTS
from ansible.module_utils.app_smoke import CLEANUP, METHODS, SMOKE, normalize, plan_lines, plan_problems, run_requests
from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.module_refusal import RefusingModule

REQUEST_OPTIONS = {
    "name": {"type": "str", "required": True},
    "method": {"type": "str", "default": "GET", "choices": list(METHODS)},
    "url": {"type": "str", "required": True},
    "headers": {"type": "dict", "default": {}, "no_log": True},
    "body": {"type": "raw"},
    "status": {"type": "list", "elements": "int", "default": [200]},
    "capture": {"type": "dict", "default": {}},
}


def main():
    module = RefusingModule(
        argument_spec={
            "requests": {"type": "list", "elements": "dict", "default": [], "options": REQUEST_OPTIONS},
            "cleanup": {"type": "list", "elements": "dict", "default": [], "options": REQUEST_OPTIONS},
            "headers": {"type": "dict", "default": {}, "no_log": True},
            "public_url": {"type": "str", "default": ""},
            "timeout": {"type": "float", "default": 10},
            "secrets": {"type": "list", "elements": "str", "default": [], "no_log": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    smoke, problems = normalize(p["requests"], SMOKE)
    cleanup, more = normalize(p["cleanup"], CLEANUP)
    problems += more
    if not problems:
        problems = plan_problems(smoke, cleanup, p["headers"], p["public_url"])
    if problems:
        module.fail_json(msg="the smoke requests cannot run, nothing was sent: " + "; ".join(problems),
                         problems=problems)
    planned = plan_lines(smoke, cleanup, p["public_url"])
    empty = {"requests": [], "failed_request": None, "cleanup_failed": [], "captured": []}
    if not smoke and not cleanup:
        module.exit_json(changed=False, ok=True, planned=[], msg="no smoke requests configured", **empty)
    if module.check_mode:
        module.exit_json(changed=False, ok=False, planned=planned,
                         msg="would send, in order: " + "; ".join(planned), **empty)
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"))
    result = run_requests(smoke, cleanup, public_url=p["public_url"], headers=p["headers"], timeout=p["timeout"],
                          secrets=p["secrets"])
    # The requests change the app's data, but the cleanup removes what they made: nothing to converge.
    module.exit_json(changed=False, planned=[], **result)


if __name__ == "__main__":
    main()
