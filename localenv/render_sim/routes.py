"""Render's paths under /v1: the route table, matching, and the query and body parsing every
operation shares (array parameters, limits, cursor pagination, date-times)."""

from __future__ import annotations

import re
from urllib.parse import unquote

from localenv.render_sim.common import ApiError, cursor_for, cursor_value, parse_time

API_PREFIX = "/v1"


# -- query helpers --------------------------------------------------------------------------

def q_list(query: dict, name: str) -> list[str]:
    """Array query parameters in either form Render accepts: repeated keys or comma-separated."""
    values = []
    for raw in query.get(name, []):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return values


def q_one(query: dict, name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def q_limit(query: dict) -> int:
    raw = q_one(query, "limit")
    if raw is None:
        return 20
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, "limit must be an integer") from None
    if not 1 <= limit <= 100:
        raise ApiError(400, "limit must be between 1 and 100")
    return limit


def paginate(items: list, key, wrapper: str, query: dict, render) -> list[dict]:
    limit = q_limit(query)
    cursor = q_one(query, "cursor")
    start = 0
    if cursor:
        # An unknown or stale cursor gives an empty page: the spec documents no 400 for most lists.
        try:
            wanted = cursor_value(cursor)
        except (ValueError, UnicodeDecodeError):
            wanted = None
        keys = [key(item) for item in items]
        start = keys.index(wanted) + 1 if wanted in keys else len(items)
    return [{"cursor": cursor_for(key(item)), wrapper: render(item)} for item in items[start:start + limit]]


def body_dict(body) -> dict:
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def time_param(query: dict, name: str):
    raw = q_one(query, name)
    if not raw:
        return None
    try:
        return parse_time(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 date-time") from None



# -- routes ------------------------------------------------------------------------------------

# (method, template, handler, rate-limit category)
ROUTES = [
    ("GET", "/owners", "list_owners", "get"),
    ("GET", "/services", "list_services", "get"),
    ("GET", "/services/{serviceId}", "get_service", "get"),
    ("PATCH", "/services/{serviceId}", "patch_service", "service_action"),
    ("POST", "/services/{serviceId}/suspend", "suspend", "service_action"),
    ("POST", "/services/{serviceId}/resume", "resume", "service_action"),
    ("GET", "/services/{serviceId}/env-vars", "list_env", "get"),
    ("PUT", "/services/{serviceId}/env-vars", "replace_env", "mutate"),
    ("GET", "/services/{serviceId}/env-vars/{envVarKey}", "get_env", "get"),
    ("PUT", "/services/{serviceId}/env-vars/{envVarKey}", "put_env", "mutate"),
    ("DELETE", "/services/{serviceId}/env-vars/{envVarKey}", "delete_env", "mutate"),
    ("GET", "/services/{serviceId}/deploys", "list_deploys", "get"),
    ("POST", "/services/{serviceId}/deploys", "create_deploy", "service_action"),
    ("GET", "/services/{serviceId}/deploys/{deployId}", "get_deploy", "get"),
    ("GET", "/services/{serviceId}/events", "list_events", "get"),
    ("GET", "/postgres", "list_postgres", "get"),
    ("GET", "/postgres/{postgresId}", "get_postgres", "get"),
    ("GET", "/postgres/{postgresId}/connection-info", "connection_info", "get"),
    ("GET", "/postgres/{postgresId}/credentials", "list_credentials", "get"),
    ("POST", "/postgres/{postgresId}/credentials", "create_credential", "mutate"),
    ("DELETE", "/postgres/{postgresId}/credentials/{username}", "delete_credential", "mutate"),
    ("GET", "/postgres/{postgresId}/export", "list_exports", "get"),
    ("POST", "/postgres/{postgresId}/export", "create_export", "mutate"),
    ("GET", "/logs", "list_logs", "get"),
]
_COMPILED = [(m, t, h, c, re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", t) + "$"))
             for m, t, h, c in ROUTES]


def match_route(method: str, path: str):
    """(template, handler, category, params) or an ApiError 404/405."""
    known_path = False
    for m, template, handler, category, regex in _COMPILED:
        found = regex.match(path)
        if found:
            known_path = True
            if m == method:
                return template, handler, category, {k: unquote(v) for k, v in found.groupdict().items()}
    if known_path:
        raise ApiError(405, f"method {method} not allowed on {path}")
    raise ApiError(404, "not found")

