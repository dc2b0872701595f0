"""What every part of the simulator shares: ids, times, cursors, limits and the API error.

Times are rendered as Render's recorded responses show them (microseconds, ``Z``); cursors are
opaque base64 of the listed item's key.
"""

from __future__ import annotations

import base64
import os
import secrets
from datetime import UTC, datetime

ID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEFAULT_RATE_LIMITS = {
    # Render's documented limits (RENDER_API.md section 2.3), per user per minute.
    "get": 400,             # all other GET
    "mutate": 30,           # all other POST / PATCH / PUT / DELETE
    "service_action": 10,   # PATCH /services/{id}, POST deploys/suspend/resume: per service
}
DEFAULT_TIMINGS = {
    "step_seconds": 0.3,        # time spent in each of queued/build/update
    "health_timeout": 20.0,     # an update that is not healthy by then is update_failed
    "pre_deploy_timeout": 600.0,
    "credential_delay": 0.0,    # > 0: a created PostgreSQL user appears only after this long
}
TERMINAL = {"live", "deactivated", "build_failed", "update_failed", "canceled", "pre_deploy_failed"}


def new_id(prefix: str) -> str:
    return prefix + "-" + "".join(secrets.choice(ID_ALPHABET) for _ in range(20))


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    # isoformat, not strftime: strftime's %Y does not zero-pad years before 1000 (schemathesis
    # sent such a startTime).
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(value: str) -> datetime:
    """ISO 8601 (the spec's date-time) or epoch seconds (the spec's prose)."""
    value = value.strip()
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except ValueError:
        pass
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def cursor_for(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def cursor_value(cursor: str) -> str:
    padded = cursor + "=" * (-len(cursor) % 4)
    return base64.urlsafe_b64decode(padded.encode()).decode()


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

