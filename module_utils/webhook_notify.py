"""Notifications of a run's start and end to a webhook (JSON POST, Slack-compatible).

A notification tells people; it never decides the run: a failing receiver is
reported back, never raised. The payload holds the environment, the event, the
step, the duration and the report's path, passed through redaction with the
run's secrets, and any URL credential masked, so no secret ever leaves in one.
"""

from __future__ import annotations

from ansible.module_utils.redaction import redact

EVENTS = ("start", "success", "failure")
_VERBS = {"start": "recovery started", "success": "recovery succeeded", "failure": "recovery FAILED"}


def build_payload(*, event: str, environment: str, step: str = "", duration_seconds: float | None = None,
                  report: str = "", message: str = "", secrets=()) -> dict:
    """The JSON body: a Slack-compatible ``text`` line and the same facts as fields."""
    if event not in EVENTS:
        raise ValueError(f"event must be one of {', '.join(EVENTS)}, not {event!r}")
    text = f"render-key-recovery: {environment}: {_VERBS[event]}"
    if step:
        text += f" at '{step}'" if event == "failure" else f" ({step})"
    if duration_seconds is not None:
        text += f" after {round(float(duration_seconds))} s"
    if message:
        text += f": {message}"
    if report:
        text += f" (report: {report})"
    payload = {"text": text, "event": event, "environment": environment, "step": step,
               "duration_seconds": None if duration_seconds is None else round(float(duration_seconds), 1),
               "report": report, "message": message}
    return redact(payload, secrets, mask_urls=True)


def deliver(url: str, payload: dict, *, timeout: float = 10.0) -> dict:
    """POST payload to url once; {"delivered", "status", "error"}; never raises."""
    import requests

    try:
        response = requests.post(url, json=payload, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        # The exception text may name the URL, whose path is a secret for a Slack webhook.
        return {"delivered": False, "status": None, "error": f"the webhook could not be reached ({type(exc).__name__})"}
    if 200 <= response.status_code < 300:
        return {"delivered": True, "status": response.status_code, "error": ""}
    return {"delivered": False, "status": response.status_code,
            "error": f"the webhook answered HTTP {response.status_code}"}
