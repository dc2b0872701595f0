"""The simulator's test-only control endpoints.

They live under ``/__sim__/`` (a path Render does not use) and need the same bearer key as the
API (the webhook receiver excepted):

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

import json
from collections import deque


class ControlEndpoints:
    """The /__sim__ half of the request handler (server.py), which provides ``sim_server``,
    ``command``, ``_token`` and ``_write``."""

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
