#!/usr/bin/python
"""Ansible module: trigger a Render deploy and wait for it, or wait for an existing one."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: render_deploy
short_description: Trigger a deploy of a Render service and wait for it to finish
description:
  - Creates a deploy with C(POST /services/{serviceId}/deploys). Render answers either 201
    with the deploy or 202 ("queued" behind a running deploy) with no body; after a 202 the
    module finds the new deploy in the service's deploy list.
  - A create that failed ambiguously (5xx, timeout, dropped connection) is retried only after
    the deploy list shows that no deploy was created; one left unanswered (read timeout, dropped
    connection, 502/504) may still be running on Render's side, so the list is watched for
    I(in_flight_wait) seconds first and a deploy Render creates late is found, not doubled.
  - The deploy reported is the one live at the end. When a newer deploy supersedes the one this
    task made or waited for (someone else's, or a late duplicate), that newer one is waited for
    and reported, with C(superseded) naming the one it replaced.
  - Waits until the deploy is terminal (C(live), C(deactivated), C(build_failed),
    C(update_failed), C(canceled), C(pre_deploy_failed)) or I(wait_timeout) passes.
  - When the deploy fails, fetches the service's C(pre_deploy_ended) event for it and the
    service's recent logs, and fails with them (or returns them with I(fail_on_failure=false)).
  - With I(deploy_id) no deploy is created; the module waits for (or reports) that one.
  - A deploy is an action, so creating one always reports C(changed); guard the task
    (for example with C(when) on the result of the M(render_env_var) task) to keep a play
    idempotent. In check mode nothing is created and C(changed) is true.
options:
  service:
    description: The service ID (C(srv-...)) or its exact name.
    type: str
    required: true
    aliases: [service_id]
  deploy_id:
    description: Wait for / report this existing deploy instead of creating one.
    type: str
  trigger:
    description:
      - C(always) creates a deploy on every run (a deploy is an action); while another is in progress
        Render queues it (202).
      - C(unless_live) creates one only when the service's newest deploy is not C(live) (e.g. it ended
        C(pre_deploy_failed)), so a second run changes nothing. A newest deploy still in progress (or
        queued) is first waited for, up to I(wait_timeout), and then judged the same way; a second deploy
        is never started beside it. In check mode it is not waited for, and the task reports C(changed).
    type: str
    choices: [always, unless_live]
    default: always
  clear_cache:
    description: Clear the build cache first.
    type: bool
    default: false
  commit_id:
    description: Deploy this commit instead of the branch's latest.
    type: str
  wait:
    description: Wait for the deploy to end.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the deploy to end.
    type: int
    default: 1800
  poll_interval:
    description: Seconds between two reads of the deploy's status.
    type: float
    default: 5
  queued_timeout:
    description: After a 202, seconds to look for the queued deploy in the deploy list.
    type: float
    default: 60
  fail_on_failure:
    description: Fail the task when the deploy ends in a failed state.
    type: bool
    default: true
  log_lines:
    description: How many recent log lines to fetch when the deploy fails.
    type: int
    default: 100
extends_documentation_fragment: [render_api]
author: render-key-recovery
"""

EXAMPLES = r"""
- name: Deploy with the new DATABASE_URL and wait for it to be live
  render_deploy:
    service: "{{ render_service_id }}"
    wait_timeout: 1200
  when: database_url.changed
  register: deploy

- name: Wait for a deploy someone else started
  render_deploy:
    service: demo-api
    deploy_id: dep-d0abcdefghijklmnopqr
"""

RETURN = r"""
deploy:
  description: The deploy as Render last reported it.
  returned: when a deploy exists (not in check mode without deploy_id)
  type: dict
status:
  description: The deploy's last status.
  returned: when a deploy exists
  type: str
  sample: live
http_status:
  description: What Render answered to the create (201 with a body, or 202 queued).
  returned: when a deploy was created
  type: int
superseded:
  description: The deploy this task followed and the newer one that replaced it as the live one.
  returned: when a newer deploy superseded it
  type: dict
  sample: {deploy_id: dep-d0abc, by: dep-d0xyz}
failure:
  description:
    - When the deploy failed, the service's C(pre_deploy_ended) and C(deploy_ended) events for
      it and the recent log lines (oldest first), to tell why.
  returned: on failure
  type: dict
"""

from datetime import UTC, datetime

from ansible.module_utils.render_api import DEPLOY_SUCCESS, DEPLOY_TERMINAL
from ansible.module_utils.render_http import RenderAPIError
from ansible.module_utils.render_module import render_argument_spec, run_module


def failure_details(client, service, deploy, log_lines):
    """The events and logs that say why a deploy failed; partial when a read fails.
    Log lines are scrubbed of the API key and of passwords in URLs."""
    details = {"events": {}, "logs": [], "errors": []}
    service_id = service["id"]
    for event_type in ("pre_deploy_ended", "deploy_ended", "build_ended"):
        try:
            for event in client.list_events(service_id, event_type=event_type, max_items=20):
                if (event.get("details") or {}).get("deployId") == deploy["id"] or \
                        (event_type == "build_ended" and deploy["id"] in str(event.get("details"))):
                    details["events"][event_type] = event
                    break
        except RenderAPIError as exc:
            details["errors"].append(str(exc))
    if log_lines > 0:
        try:
            end = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            logs = client.query_logs(service["ownerId"], [service_id], start_time=deploy.get("createdAt"),
                                     end_time=end, direction="backward", page_limit=min(100, log_lines),
                                     max_logs=log_lines)
            details["logs"] = [client.scrub(entry.get("message") or "") for entry in reversed(logs["logs"])]
        except RenderAPIError as exc:
            details["errors"].append(str(exc))
    return details


def pre_deploy_exit_code(failure):
    """The pre-deploy command's exit code from the pre_deploy_ended event, or None.
    Render sends explicit nulls, so every level may be null."""
    event = failure["events"].get("pre_deploy_ended") or {}
    reason = (event.get("details") or {}).get("reason") or {}
    return (reason.get("failure") or {}).get("nonZeroExit")


def settled_latest(module, client, service_id, params, result):
    """The service's newest deploy once it is terminal. One still in progress (or queued) is
    waited for, never doubled; in check mode it is returned as it is."""
    latest = next(iter(client.list_deploys(service_id, limit=1, max_items=1)), None)
    if latest is None or latest.get("status") in DEPLOY_TERMINAL or module.check_mode:
        return latest
    try:
        return client.wait_for_deploy(service_id, latest["id"], timeout=params["wait_timeout"],
                                      interval=params["poll_interval"])
    except RenderAPIError as exc:
        result.update(deploy=latest, status=latest.get("status"))
        module.fail_json(msg=f"{exc} (it was already in progress; no second deploy was started)", **result)


def actually_live(module, client, service_id, deploy, params, result):
    """``deploy`` (ended live) or, when a newer deploy has replaced it since, that newer one
    once it ended live: the deploy the service really runs."""
    newest = next(iter(client.list_deploys(service_id, limit=1, max_items=1)), None)
    if newest is None or newest["id"] == deploy["id"]:
        return deploy
    if newest.get("status") not in DEPLOY_TERMINAL:
        try:
            newest = client.wait_for_deploy(service_id, newest["id"], timeout=params["wait_timeout"],
                                            interval=params["poll_interval"])
        except RenderAPIError as exc:
            result.update(deploy=deploy, status=deploy.get("status"))
            module.fail_json(msg=f"deploy {deploy['id']} went live, but a newer deploy replaces it: {exc}",
                             **result)
    if newest.get("status") not in DEPLOY_SUCCESS:
        return client.get_deploy(service_id, deploy["id"])  # the newer one failed: ours stays live
    result["superseded"] = {"deploy_id": deploy["id"], "by": newest["id"]}
    module.warn(f"deploy {deploy['id']} was superseded by the newer deploy {newest['id']}, which is the one live")
    return newest


def run(module, client):
    params = module.params
    service = client.find_service(params["service"])
    service_id = service["id"]
    result = {"changed": False, "service_id": service_id}
    latest = None
    if params["trigger"] == "unless_live" and not params["deploy_id"]:
        latest = settled_latest(module, client, service_id, params, result)
    if params["deploy_id"]:
        deploy = client.get_deploy(service_id, params["deploy_id"])
    elif latest is not None and latest.get("status") in DEPLOY_SUCCESS:
        # Idempotent mode: the service already runs a live deploy, nothing to do.
        result.update(deploy=latest, status=latest.get("status"))
        return result
    elif latest is not None and latest.get("status") not in DEPLOY_TERMINAL:
        # Check mode only: a real run waits for this deploy and deploys only if it fails.
        result.update(changed=True, deploy=latest, status=latest.get("status"),
                      msg=f"deploy {latest['id']} of service {service_id} is {latest.get('status')}: "
                          "would wait for it and deploy only if it does not end live")
        return result
    else:
        result["changed"] = True
        if module.check_mode:
            result["msg"] = f"would trigger a deploy of service {service_id}"
            return result
        deploy, http_status = client.create_deploy(
            service_id, clear_cache=params["clear_cache"], commit_id=params["commit_id"],
            queued_timeout=params["queued_timeout"])
        result["http_status"] = http_status
        if deploy is None:
            result["msg"] = (f"Render queued a deploy of service {service_id} (HTTP {http_status}) but it "
                             f"was not listed within {params['queued_timeout']:.0f}s")
            if params["wait"]:
                module.fail_json(**result)
            return result
    if params["wait"] and deploy.get("status") not in DEPLOY_TERMINAL:
        try:
            deploy = client.wait_for_deploy(service_id, deploy["id"], timeout=params["wait_timeout"],
                                            interval=params["poll_interval"])
        except RenderAPIError as exc:
            result.update(deploy=deploy, status=deploy.get("status"))
            module.fail_json(msg=str(exc), **result)
    if params["wait"] and deploy.get("status") in DEPLOY_SUCCESS:
        deploy = actually_live(module, client, service_id, deploy, params, result)
    status = deploy.get("status")
    result.update(deploy=deploy, status=status)
    if status in DEPLOY_TERMINAL and status not in DEPLOY_SUCCESS:
        failure = failure_details(client, service, deploy, params["log_lines"])
        result["failure"] = failure
        if params["fail_on_failure"]:
            tail = "\n".join(failure["logs"][-15:])
            exit_code = pre_deploy_exit_code(failure)
            why = f" (pre-deploy command exited {exit_code})" if exit_code is not None else ""
            module.fail_json(msg=f"deploy {deploy['id']} of service {service_id} ended {status}{why}"
                                 + (f"; recent logs:\n{tail}" if tail else ""), **result)
    return result


def argument_spec():
    spec = render_argument_spec()
    spec.update(
        service={"type": "str", "required": True, "aliases": ["service_id"]},
        deploy_id={"type": "str"},
        trigger={"type": "str", "choices": ["always", "unless_live"], "default": "always"},
        clear_cache={"type": "bool", "default": False},
        commit_id={"type": "str"},
        wait={"type": "bool", "default": True},
        wait_timeout={"type": "int", "default": 1800},
        poll_interval={"type": "float", "default": 5.0},
        queued_timeout={"type": "float", "default": 60.0},
        fail_on_failure={"type": "bool", "default": True},
        log_lines={"type": "int", "default": 100},
    )
    return spec


def main():
    run_module(argument_spec(), run)


if __name__ == "__main__":
    main()
