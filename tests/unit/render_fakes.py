"""A scripted fake transport for the Render client's unit tests: each route answers from a
list, every call is recorded, sleep and clock are injected so nothing waits."""

from __future__ import annotations

import json

import requests
from ansible.module_utils.render_api import RenderClient

KEY = "rnd_UnitTestKey_0123456789abcdef"
BASE = "https://api.render.test/v1"


def response(status, body=None, headers=None):
    resp = requests.Response()
    resp.status_code = status
    if body is None:
        resp._content = b""
    else:
        resp._content = json.dumps(body).encode()
        resp.headers["Content-Type"] = "application/json; charset=utf-8"
    resp.headers.update(headers or {})
    return resp


class FakeSession:
    """Answers each request from a per-route script; records every call."""

    def __init__(self, routes=None):
        self.routes = routes or {}
        self.calls = []

    def request(self, method, url, params=None, data=None, headers=None, timeout=None,
                allow_redirects=True):
        assert url.startswith(BASE)
        path = url[len(BASE):]
        self.calls.append({"method": method, "path": path, "params": dict(params or {}),
                           "body": json.loads(data) if data else None, "headers": dict(headers)})
        script = self.routes[(method, path)]
        item = script.pop(0) if isinstance(script, list) else script
        if callable(item):
            item = item(self.calls[-1])
        if isinstance(item, BaseException):
            raise item
        return item

    def count(self, method, path):
        return sum(1 for c in self.calls if c["method"] == method and c["path"] == path)


class Sleeper:
    def __init__(self):
        self.slept = []
        self.now = 0.0

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds

    def clock(self):
        return self.now


def client(routes, **kw):
    sleeper = Sleeper()
    session = FakeSession(routes)
    c = RenderClient(KEY, BASE, session=session, sleep=sleeper.sleep, clock=sleeper.clock,
                     jitter=lambda: 0.0, **kw)
    return c, session, sleeper


def refused():
    """What requests raises when nothing listens: the request was never sent."""
    try:
        requests.get("http://127.0.0.1:1/", timeout=2)
    except requests.exceptions.ConnectionError as exc:
        return exc
    raise AssertionError("port 1 answered")


def dropped():
    return requests.exceptions.ConnectionError(
        "('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))")


SRV = "srv-ct6vn35j0q5s700ckga0"
SERVICE = {"id": SRV, "name": "api", "suspended": "not_suspended",
           "serviceDetails": {"maintenanceMode": {"enabled": False, "uri": ""}}}
