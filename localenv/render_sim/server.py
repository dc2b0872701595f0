"""The simulator's HTTP side: Render's paths under /v1, auth, rate limits, faults, a journal.

Every API response carries ``Render-Request-Id`` and ``Ratelimit-Limit``,
``Ratelimit-Remaining`` and ``Ratelimit-Reset`` (seconds until the window resets, as
recorded from the real API). Errors are ``{"message": ...}``. Empty bodies (202, 204 and the
200 of DELETE credential) carry no Content-Type, as Render sends them.

Test-only control endpoints live under ``/__sim__/`` (a path Render does not use) and need
the same bearer key:

- ``POST /__sim__/faults`` ``{"operation": "POST /services/{serviceId}/deploys", "faults": [...]}``
  queues faults for one operation (its template, or a literal path like
  ``GET /services/srv-x``); each matching request takes the next one. A fault is
  ``{"status": 503}`` (answer that instead), ``{"drop": true}`` (close the connection without
  an answer), ``{"delay": 1.5}`` (wait first), and with ``"apply": true`` the request is
  carried out before the status or the drop; ``headers`` and ``body`` override the answer's.
  ``GET`` lists what is left; ``DELETE`` clears.
- ``GET|DELETE /__sim__/journal``: every API request and response, for conformance tests
  (the Authorization header is recorded only as present or not).
- ``PUT /__sim__/rate-limits`` ``{"get": 5}``: change the limits and reset the windows.
- ``GET /__sim__/state``: ports, pids and usernames, never passwords.
- ``POST /__sim__/webhook/<name>`` (no key, as a Slack webhook), ``GET|DELETE /__sim__/webhooks``:
  a webhook receiver for the notifications a run sends (``webhooks.py``).
- ``PUT /__sim__/app-faults`` ``{"service": "srv-...", "faults": [{"path": "/api/deals", "method": "POST",
  "status": 500, "log": "a line"}]}``: what the service's app answers instead (``webapp_api.py``; kept
  across deploys until replaced); ``GET`` lists them by service, ``DELETE`` clears them all.
- ``POST /__sim__/logs`` ``{"resource": "srv-...", "lines": ["..."], "type": "app", "level": "error"}``:
  log lines as if the resource wrote them now (what ``GET /logs`` then returns).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import re
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from localenv.render_sim.model import (
    ApiError,
    Service,
    cursor_for,
    cursor_value,
    iso,
    new_id,
    now,
    parse_time,
)
from localenv.render_sim.webhooks import RECEIVE_PREFIX, WebhookInbox

API_PREFIX = "/v1"
USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
PAID_PLANS = {"starter", "standard", "pro", "pro_plus", "pro_max", "pro_ultra"}
WEB_PATCH_FIELDS = {"envSpecificDetails", "healthCheckPath", "maintenanceMode", "plan", "preDeployCommand",
                    "pullRequestPreviewsEnabled", "previews", "runtime", "maxShutdownDelaySeconds",
                    "renderSubdomainPolicy", "ipAllowList", "cache"}
SERVICE_PATCH_FIELDS = {"autoDeploy", "repo", "branch", "image", "name", "buildFilter", "rootDir",
                        "serviceDetails"}


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


def _body_dict(body) -> dict:
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


# -- the API operations ---------------------------------------------------------------------

class Api:
    def __init__(self, sim):
        self.sim = sim

    def list_owners(self, p, q, body):
        return 200, paginate([self.sim.owner], lambda o: o["id"], "owner", q, dict)

    def list_services(self, p, q, body):
        names, types = q_list(q, "name"), q_list(q, "type")
        suspended, regions = q_list(q, "suspended"), q_list(q, "region")
        with self.sim.lock:
            items = [s for s in self.sim.services.values()
                     if (not names or s.name in names) and (not types or s.type in types)
                     and (not regions or s.region in regions)
                     and (not suspended or ("suspended" if s.suspended else "not_suspended") in suspended)]
            return 200, paginate(items, lambda s: s.id, "service", q, Service.api)

    def get_service(self, p, q, body):
        with self.sim.lock:
            return 200, self.sim.service(p["serviceId"]).api()

    def patch_service(self, p, q, body):
        body = _body_dict(body)
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            unknown = set(body) - SERVICE_PATCH_FIELDS
            if unknown:
                raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))}")
            details = body.get("serviceDetails") or {}
            if not isinstance(details, dict):
                raise ApiError(400, "serviceDetails must be an object")
            if service.type != "web_service" and "maintenanceMode" in details:
                raise ApiError(400, "maintenance mode is only available for web services")
            unknown = set(details) - WEB_PATCH_FIELDS
            if unknown:
                raise ApiError(400, f"unknown serviceDetails field(s): {', '.join(sorted(unknown))}")
            mm = details.get("maintenanceMode")
            if mm is not None:
                if (not isinstance(mm, dict) or not isinstance(mm.get("enabled"), bool)
                        or not isinstance(mm.get("uri"), str)):
                    raise ApiError(400, "maintenanceMode needs enabled (boolean) and uri (string)")
                if mm["uri"] and mm["uri"].startswith(service.url or "\0"):
                    raise ApiError(400, "the maintenance page must not be a URL of this service")
            if "plan" in details and details["plan"] not in PAID_PLANS:
                raise ApiError(400, f"invalid plan {details['plan']!r}")
            if "autoDeploy" in body and body["autoDeploy"] not in ("yes", "no"):
                raise ApiError(400, "autoDeploy must be yes or no")
            if "name" in body and (not isinstance(body["name"], str) or not body["name"]):
                raise ApiError(400, "name must be a non-empty string")
            # validated: apply
            if mm is not None:
                service.set_maintenance(mm["enabled"], mm["uri"])
            if "healthCheckPath" in details:
                service.health_check_path = str(details["healthCheckPath"])
            if "preDeployCommand" in details:
                service.pre_deploy_command = str(details["preDeployCommand"])
            if "plan" in details:
                service.plan = details["plan"]
            if "name" in body:
                service.name = body["name"]
            if "autoDeploy" in body:
                service.auto_deploy = body["autoDeploy"]
            service.updated_at = now()
            return 200, service.api()

    def suspend(self, p, q, body):
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
        service.suspend()
        return 202, None

    def resume(self, p, q, body):
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
        service.resume()
        return 202, None

    def list_env(self, p, q, body):
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            items = list(service.env.items())
        return 200, paginate(items, lambda kv: kv[0], "envVar", q, lambda kv: {"key": kv[0], "value": kv[1]})

    @staticmethod
    def _env_value(item: dict, *, key_required: bool) -> tuple[str | None, str]:
        if not isinstance(item, dict):
            raise ApiError(400, "each environment variable must be an object")
        key = item.get("key")
        if key_required and (not isinstance(key, str) or not key):
            raise ApiError(400, "key is required")
        has_value, generate = "value" in item, item.get("generateValue") is True
        if has_value == generate:
            raise ApiError(400, "give exactly one of value or generateValue")
        if has_value and not isinstance(item["value"], str):
            raise ApiError(400, "value must be a string")
        return key, item["value"] if has_value else _generated_value()

    def replace_env(self, p, q, body):
        if not isinstance(body, list):
            raise ApiError(400, "request body must be a JSON array")
        pairs = [self._env_value(item, key_required=True) for item in body]
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            service.env = dict(pairs)
            service.updated_at = now()
            items = list(service.env.items())
        return 200, [{"envVar": {"key": k, "value": v}, "cursor": cursor_for(k)} for k, v in items]

    def get_env(self, p, q, body):
        key = p["envVarKey"]
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            if key not in service.env:
                raise ApiError(404, f"not found: {key}")
            return 200, {"key": key, "value": service.env[key]}

    def put_env(self, p, q, body):
        _, value = self._env_value(_body_dict(body), key_required=False)
        key = p["envVarKey"]
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            service.env[key] = value
            service.updated_at = now()
        return 200, {"key": key, "value": value}

    def delete_env(self, p, q, body):
        key = p["envVarKey"]
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            if key not in service.env:
                raise ApiError(404, f"not found: {key}")
            del service.env[key]
            service.updated_at = now()
        return 204, None

    def list_deploys(self, p, q, body):
        statuses = q_list(q, "status")
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            items = [d for d in service.deploys if not statuses or d["status"] in statuses]
            return 200, paginate(items, lambda d: d["id"], "deploy", q, Service.deploy_api)

    def create_deploy(self, p, q, body):
        body = {} if body is None else _body_dict(body)
        if body.get("clearCache", "do_not_clear") not in ("clear", "do_not_clear"):
            raise ApiError(400, "clearCache must be clear or do_not_clear")
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            deploy, queued_behind = service.create_deploy(body)
            if queued_behind:
                return 202, None
            return 201, Service.deploy_api(deploy)

    def get_deploy(self, p, q, body):
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            for deploy in service.deploys:
                if deploy["id"] == p["deployId"]:
                    return 200, Service.deploy_api(deploy)
        raise ApiError(404, f"not found: {p['deployId']}")

    def list_events(self, p, q, body):
        types = q_list(q, "type")
        start, end = _time_param(q, "startTime"), _time_param(q, "endTime")
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            items = [e for e in service.events if (not types or e["type"] in types)
                     and (start is None or parse_time(e["timestamp"]) >= start)
                     and (end is None or parse_time(e["timestamp"]) <= end)]
            return 200, paginate(items, lambda e: e["id"], "event", q, dict)

    def list_postgres(self, p, q, body):
        names = q_list(q, "name")
        with self.sim.lock:
            items = [i for i in self.sim.postgres.values() if not names or i.name in names]
            return 200, paginate(items, lambda i: i.id, "postgres", q, lambda i: i.api(detail=False))

    def get_postgres(self, p, q, body):
        with self.sim.lock:
            return 200, self.sim.instance(p["postgresId"]).api(detail=True)

    def connection_info(self, p, q, body):
        with self.sim.lock:
            return 200, self.sim.instance(p["postgresId"]).connection_info()

    def list_credentials(self, p, q, body):
        with self.sim.lock:
            return 200, self.sim.instance(p["postgresId"]).list_credentials()

    def create_credential(self, p, q, body):
        body = _body_dict(body)
        username = body.get("username")
        if not isinstance(username, str) or not username:
            raise ApiError(400, "username is required")
        if not USERNAME_RE.match(username):
            raise ApiError(400, "username must start with a lowercase letter or _ and hold only "
                                "lowercase letters, digits and _ (at most 63)")
        with self.sim.lock:
            self.sim.instance(p["postgresId"]).create_credential(username)
        return 202, None

    def delete_credential(self, p, q, body):
        with self.sim.lock:
            self.sim.instance(p["postgresId"]).delete_credential(p["username"])
        return 200, None

    def list_exports(self, p, q, body):
        with self.sim.lock:
            return 200, self.sim.instance(p["postgresId"]).list_exports()

    def create_export(self, p, q, body):
        with self.sim.lock:
            self.sim.instance(p["postgresId"]).create_export()
        return 202, None

    def list_logs(self, p, q, body):
        owner_id = q_one(q, "ownerId")
        if not owner_id:
            raise ApiError(400, "ownerId is required")
        if owner_id != self.sim.owner["id"]:
            raise ApiError(404, f"not found: {owner_id}")
        resources = q_list(q, "resource")
        if not resources:
            raise ApiError(400, "resource is required")
        with self.sim.lock:
            for resource in resources:
                if resource not in self.sim.services and resource not in self.sim.postgres:
                    raise ApiError(404, f"not found: {resource}")
        end = _time_param(q, "endTime") or now()
        start = _time_param(q, "startTime") or (end - _HOUR)
        direction = q_one(q, "direction") or "backward"
        if direction not in ("forward", "backward"):
            raise ApiError(400, "direction must be forward or backward")
        filters = {name: q_list(q, name) for name in ("level", "type", "text", "instance")}
        return 200, self.sim.logs.query(set(resources), start, end, direction, q_limit(q), filters)


def _time_param(query: dict, name: str):
    raw = q_one(query, name)
    if not raw:
        return None
    try:
        return parse_time(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 date-time") from None


def _generated_value() -> str:
    import secrets

    return secrets.token_urlsafe(32)


_HOUR = __import__("datetime").timedelta(hours=1)

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


# -- rate limits ------------------------------------------------------------------------------

class RateLimiter:
    """Fixed one-minute windows per (user, category[, service])."""

    def __init__(self, limits: dict, clock=time.monotonic):
        self.limits = dict(limits)
        self.clock = clock
        self.windows: dict = {}
        self.lock = threading.Lock()

    def hit(self, bucket: tuple, category: str, *, consume: bool = True):
        limit = int(self.limits[category])
        with self.lock:
            moment = self.clock()
            start, count = self.windows.get(bucket, (moment, 0))
            if moment - start >= 60:
                start, count = moment, 0
            allowed = count < limit
            if consume and allowed:
                count += 1
            self.windows[bucket] = (start, count)
            reset = max(1, math.ceil(60 - (moment - start)))
            return allowed, {"Ratelimit-Limit": str(limit), "Ratelimit-Remaining": str(max(0, limit - count)),
                             "Ratelimit-Reset": str(reset)}

    def reset(self, limits: dict | None = None):
        with self.lock:
            if limits:
                self.limits.update(limits)
            self.windows.clear()


# -- the server --------------------------------------------------------------------------------

class SimServer:
    def __init__(self, sim, api_key: str, *, host: str = "127.0.0.1", port: int = 0):
        if not api_key:
            raise ValueError("the simulator needs an API key")
        self.sim = sim
        self.api = Api(sim)
        self._key_digest = hashlib.sha256(api_key.encode()).digest()
        self.limiter = RateLimiter(sim.rate_limits)
        self.faults: dict[str, deque] = {}
        self.faults_lock = threading.Lock()
        self.journal: list[dict] = []
        self.journal_lock = threading.Lock()
        self.webhooks = WebhookInbox()
        handler = type("BoundHandler", (Handler,), {"sim_server": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    def start(self) -> SimServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True, name="render-sim")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.sim.stop()

    def key_ok(self, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self._key_digest)

    def take_fault(self, method: str, path: str, template: str):
        with self.faults_lock:
            for name in (f"{method} {path}", f"{method} {template}"):
                queue = self.faults.get(name)
                if queue:
                    return queue.popleft()
        return None

    def record(self, entry: dict) -> None:
        with self.journal_lock:
            self.journal.append(entry)


class _Dropped(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "render-sim/1"
    sim_server: SimServer

    def log_message(self, format, *args):
        return

    def setup(self):
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm and delayed
        # ACKs stall every keep-alive response by ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    # -- plumbing --

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _token(self) -> str | None:
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def _write(self, status: int, payload, headers: dict) -> tuple[dict, str]:
        body = b"" if payload is None else (json.dumps(payload) + "\n").encode()
        self.send_response(status)
        sent = {"Render-Request-Id": f"api-{new_id('req')[4:]}/{int(time.time())}"}
        sent.update(headers)
        if body:
            sent["Content-Type"] = "application/json; charset=utf-8"
        if status != 204:
            sent["Content-Length"] = str(len(body))
        for name, value in sent.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)
        return sent, body.decode()

    def _write_text(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drop(self):
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Dropped

    # -- one request --

    def _handle(self):
        server = self.sim_server
        parts = urlsplit(self.path)
        raw = self._read_body()
        if parts.path.startswith(RECEIVE_PREFIX) and self.command == "POST":
            status, text = server.webhooks.receive(parts.path, raw)
            self._write_text(status, text)
            return
        if parts.path.startswith("/__sim__/"):
            self._control(parts.path, raw)
            return
        entry = {"method": self.command, "path": parts.path, "query": parts.query,
                 "request_headers": {k: ("<present>" if k.lower() == "authorization" else v)
                                     for k, v in self.headers.items()},
                 "request_body": raw.decode("utf-8", "replace"), "status": None,
                 "response_headers": {}, "response_body": "", "at": iso(now())}
        try:
            status, payload, headers = self._api(parts, raw, entry)
            entry["response_headers"], entry["response_body"] = self._write(status, payload, headers)
            entry["status"] = status
        except _Dropped:
            entry["status"] = None
        finally:
            server.record(entry)

    def _api(self, parts, raw: bytes, entry: dict):
        server = self.sim_server
        method = self.command
        token = self._token()
        user = hashlib.sha256((token or "").encode()).hexdigest()[:16]
        if not parts.path.startswith(API_PREFIX + "/"):
            _, headers = server.limiter.hit((user, "get"), "get", consume=False)
            return 404, {"message": "not found"}, headers
        path = parts.path[len(API_PREFIX):]
        try:
            template, handler, category, params = match_route(method, path)
        except ApiError as exc:
            _, headers = server.limiter.hit((user, "get"), "get", consume=False)
            return exc.status, {"message": exc.message}, headers
        entry["operation"] = f"{method} {template}"
        fault = server.take_fault(method, path, template) or {}
        if fault.get("delay"):
            time.sleep(float(fault["delay"]))
        if not fault.get("apply"):
            if fault.get("drop"):
                self._drop()
            if fault.get("status"):
                _, headers = server.limiter.hit((user, "get"), "get", consume=False)
                headers.update(fault.get("headers") or {})
                return (int(fault["status"]), fault.get("body", {"message": "simulated fault"}), headers)
        bucket = (user, category)
        if category == "service_action":
            bucket = (user, category, params.get("serviceId"))
        if not server.key_ok(token):
            _, headers = server.limiter.hit(bucket, category, consume=False)
            return 401, {"message": "unauthorized"}, headers
        allowed, headers = server.limiter.hit(bucket, category)
        if not allowed:
            headers["Retry-After"] = headers["Ratelimit-Reset"]
            return 429, {"id": "rate_limited", "message": "rate limit exceeded"}, headers
        query = parse_qs(parts.query, keep_blank_values=True)
        body = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                return 400, {"message": "request body is not valid JSON"}, headers
        try:
            status, payload = getattr(server.api, handler)(params, query, body)
        except ApiError as exc:
            status, payload = exc.status, {"message": exc.message}
        if fault.get("apply"):
            if fault.get("drop"):
                self._drop()
            if fault.get("status"):
                headers.update(fault.get("headers") or {})
                return int(fault["status"]), fault.get("body", {"message": "simulated fault"}), headers
        return status, payload, headers

    def _control(self, path: str, raw: bytes):
        server = self.sim_server
        if not server.key_ok(self._token()):
            self._write(401, {"message": "unauthorized"}, {})
            return
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            self._write(400, {"message": "invalid JSON"}, {})
            return
        name, method = path[len("/__sim__/"):].strip("/"), self.command
        if name == "faults" and method == "POST":
            if not isinstance(body, dict) or not isinstance(body.get("faults"), list) or \
                    not isinstance(body.get("operation"), str):
                self._write(400, {"message": "give operation and faults"}, {})
                return
            with server.faults_lock:
                server.faults.setdefault(body["operation"], deque()).extend(body["faults"])
            self._write(200, {"queued": len(body["faults"])}, {})
        elif name == "faults" and method == "GET":
            with server.faults_lock:
                self._write(200, {k: list(v) for k, v in server.faults.items() if v}, {})
        elif name == "faults" and method == "DELETE":
            with server.faults_lock:
                server.faults.clear()
            self._write(204, None, {})
        elif name == "journal" and method == "GET":
            with server.journal_lock:
                self._write(200, list(server.journal), {})
        elif name == "journal" and method == "DELETE":
            with server.journal_lock:
                server.journal.clear()
            self._write(204, None, {})
        elif name == "rate-limits" and method == "PUT":
            server.limiter.reset(body if isinstance(body, dict) else None)
            self._write(200, dict(server.limiter.limits), {})
        elif name == "webhooks" and method == "GET":
            self._write(200, server.webhooks.listed(), {})
        elif name == "webhooks" and method == "DELETE":
            server.webhooks.clear()
            self._write(204, None, {})
        elif name in ("app-faults", "logs"):
            self._control_app(name, method, body)
        elif name == "state" and method == "GET":
            self._write(200, _debug_state(server.sim), {})
        else:
            self._write(404, {"message": "unknown control endpoint"}, {})

    def _control_app(self, name: str, method: str, body) -> None:
        sim = self.sim_server.sim
        if name == "app-faults" and method == "GET":
            with sim.lock:
                self._write(200, {s.id: s.app_faults() for s in sim.services.values() if s.app_faults()}, {})
        elif name == "app-faults" and method == "DELETE":
            with sim.lock:
                for service in sim.services.values():
                    service.set_app_faults([])
            self._write(204, None, {})
        elif name == "app-faults" and method == "PUT" and isinstance(body, dict) \
                and body.get("service") in sim.services and isinstance(body.get("faults"), list) \
                and all(isinstance(f, dict) and isinstance(f.get("path"), str) for f in body["faults"]):
            with sim.lock:
                sim.services[body["service"]].set_app_faults(body["faults"])
            self._write(200, {"faults": len(body["faults"])}, {})
        elif name == "logs" and method == "POST" and isinstance(body, dict) \
                and isinstance(body.get("lines"), list) \
                and (body.get("resource") in sim.services or body.get("resource") in sim.postgres):
            resource = body["resource"]
            for line in body["lines"]:
                sim.logs.add(resource, str(line), log_type=str(body.get("type") or "app"),
                             level=str(body.get("level") or "info"),
                             instance=f"{resource}-sim01" if resource in sim.services else None)
            self._write(200, {"added": len(body["lines"])}, {})
        else:
            self._write(400, {"message": "app-faults: PUT {service, faults: [{path, ...}]}, GET or DELETE; "
                                         "logs: POST {resource, lines, type, level}"}, {})


def _debug_state(sim) -> dict:
    with sim.lock:
        return {
            "owner": sim.owner,
            "services": {s.id: {"name": s.name, "port": s.port, "url": s.url,
                                "pid": s.process.pid if s.process else None,
                                "maintenance": s.maintenance, "suspended": s.suspended,
                                "env_keys": sorted(s.env)} for s in sim.services.values()},
            "postgres": {i.id: {"database": i.database, "owner_role": i.owner_role,
                                "credentials": [c["username"] for c in i.credentials],
                                "default": i.default["username"]} for i in sim.postgres.values()},
        }
