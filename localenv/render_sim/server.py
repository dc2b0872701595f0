"""The simulator's HTTP side: Render's paths under /v1, auth, rate limits, faults, a journal.

Every API response carries ``Render-Request-Id`` and ``Ratelimit-Limit``,
``Ratelimit-Remaining`` and ``Ratelimit-Reset`` (seconds until the window resets, as
recorded from the real API). Errors are ``{"message": ...}``. Empty bodies (202, 204 and the
200 of DELETE credential) carry no Content-Type, as Render sends them.

The test-only control endpoints under ``/__sim__/`` are described in control.py; the route
table in routes.py; the operations in api_handlers.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from localenv.render_sim.api_handlers import Api
from localenv.render_sim.common import ApiError, iso, new_id, now
from localenv.render_sim.control import ControlEndpoints
from localenv.render_sim.routes import API_PREFIX, match_route
from localenv.render_sim.routes import ROUTES as ROUTES  # the route table, for the conformance tests
from localenv.render_sim.webhooks import RECEIVE_PREFIX, WebhookInbox

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


class Handler(ControlEndpoints, BaseHTTPRequestHandler):
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
