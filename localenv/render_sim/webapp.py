"""The tiny web app that stands in for a Render web service (stdlib + psycopg2).

Started by the simulator with the service's environment variables, as Render starts an
instance: ``PORT`` to listen on, ``DATABASE_URL`` to reach its database. It holds one
connection open, as an app's pool would (so Render's ``openConnections`` is not zero), and:

- ``GET /health`` (or ``HEALTH_CHECK_PATH``): 200 when a fresh connection with
  ``DATABASE_URL`` works, 503 otherwise; every path answers 503 in maintenance mode;
- ``GET /__sim__/health``: the same database check but ignoring maintenance mode; the
  simulator's own readiness probe (Render probes instances directly, past the maintenance page);
- everything else (the frontend ``/`` and a small in-memory API for smoke requests, with the
  faults the simulator sets) is answered by webapp_api.py.

Maintenance mode is applied at Render's edge, not by the app; here the simulator signals it
through the file named by ``RENDER_SIM_MAINTENANCE_FILE`` (its content is the custom page URI).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from localenv.render_sim import webapp_api

_pool = {"conn": None}
_pool_lock = threading.Lock()


def _connect(timeout=3):
    import psycopg2

    url = os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("DATABASE_URL is not set")
    return psycopg2.connect(url, connect_timeout=timeout, application_name="render-sim-webapp")


def check_database():
    """(ok, reason) for a fresh connection with DATABASE_URL; the reason never holds the URL."""
    try:
        conn = _connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        finally:
            conn.close()
        return True, "database reachable"
    except Exception as exc:  # report any failure as unhealthy
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        url = os.environ.get("DATABASE_URL") or ""
        if url and url in first:
            first = first.replace(url, "<DATABASE_URL>")
        return False, f"{type(exc).__name__}: {first}"


def _keep_pool_connection():
    with _pool_lock:
        conn = _pool["conn"]
        if conn is not None and not conn.closed:
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                return
            except Exception:  # broken: reopen below
                conn.close()
        try:
            _pool["conn"] = _connect()
        except Exception:
            _pool["conn"] = None


def _app_log(line: str) -> None:
    """A line of the app's own output: Render's log stream (the simulator's pump) holds it."""
    sys.stdout.write(line.rstrip("\n") + "\n")
    sys.stdout.flush()


def in_maintenance():
    path = os.environ.get("RENDER_SIM_MAINTENANCE_FILE")
    return bool(path) and os.path.exists(path)


class Handler(BaseHTTPRequestHandler):
    server_version = "render-sim-webapp/1"

    def _send(self, status, payload):
        if payload is None:
            body, kind = b"", None
        elif isinstance(payload, str):
            body, kind = payload.encode(), "text/html; charset=utf-8"
        else:
            body, kind = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        if kind:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        health = os.environ.get("HEALTH_CHECK_PATH") or "/health"
        if path == "/__sim__/health" and self.command == "GET":
            ok, reason = check_database()
            self._send(200 if ok else 503, {"status": "ok" if ok else "unavailable", "reason": reason})
            return
        fault = webapp_api.matching_fault(self.command, path)
        # "during_maintenance": what still answers although maintenance mode is on (a cache or a
        # custom domain in front of Render's edge); every other request gets the 503.
        if in_maintenance() and not (fault and fault.get("during_maintenance")):
            self._send(503, {"status": "maintenance",
                             "message": "This service is undergoing maintenance."})
            return
        if fault and fault.get("log"):
            _app_log(str(fault["log"]))
        if fault and fault.get("status"):
            self._send(int(fault["status"]), fault.get("body", {"error": "simulated fault"}))
            return
        if path == health and self.command == "GET":
            ok, reason = check_database()
            _keep_pool_connection()
            self._send(200 if ok else 503, {"status": "ok" if ok else "unavailable", "reason": reason})
            return
        status, payload, lines = webapp_api.handle(self.command, path, self.headers, raw)
        for line in lines:
            _app_log(line)
        self._send(status, payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def log_message(self, format, *args):
        if self.path.startswith("/__sim__/"):
            return  # the simulator's own probes are not the app's traffic
        sys.stdout.write(f"{self.address_string()} {format % args}\n")
        sys.stdout.flush()


def _exit_with_parent(stop):
    """Never outlive the simulator that started us (it may have been killed)."""
    parent = int(os.environ.get("RENDER_SIM_PARENT_PID") or 0)
    while parent:
        time.sleep(1)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            stop()
            return
        except PermissionError:
            pass


def main():
    port = int(os.environ.get("PORT", "10000"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=_exit_with_parent, args=(stop,), daemon=True).start()
    _keep_pool_connection()
    print(f"==> listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()
    with _pool_lock:
        if _pool["conn"] is not None:
            _pool["conn"].close()
    print("==> stopped", flush=True)


if __name__ == "__main__":
    main()
