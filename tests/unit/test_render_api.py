"""RenderClient against a scripted fake transport: pagination, every retry path, the
check-before-retry of POSTs that may have taken effect, error messages, and the key never
appearing in any output. Sleep and jitter are injected, so nothing here waits."""

from __future__ import annotations

import json
import logging
import pickle

import pytest
import requests
from ansible.module_utils import render_api
from ansible.module_utils.render_api import RenderAPIError, RenderClient

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


# -- auth and pagination ---------------------------------------------------------

def test_bearer_auth_and_json_headers():
    c, session, _ = client({("GET", f"/services/{SRV}"): response(200, SERVICE)})
    assert c.get_service(SRV)["id"] == SRV
    headers = session.calls[0]["headers"]
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["Accept"] == "application/json"


def test_base_url_is_configurable_and_defaults_to_render():
    assert RenderClient(KEY).base_url == "https://api.render.com/v1"
    assert RenderClient(KEY, "http://127.0.0.1:9/v1/").base_url == "http://127.0.0.1:9/v1"


def test_cursor_pagination_uses_limit_100_and_the_last_cursor():
    page1 = [{"cursor": f"c{i}", "envVar": {"key": f"K{i}", "value": "v"}} for i in range(100)]
    page2 = [{"cursor": f"c{i}", "envVar": {"key": f"K{i}", "value": "v"}} for i in range(100, 130)]
    c, session, _ = client({("GET", f"/services/{SRV}/env-vars"): [response(200, page1),
                                                                    response(200, page2)]})
    keys = [v["key"] for v in c.list_env_vars(SRV)]
    assert keys == [f"K{i}" for i in range(130)]
    assert session.calls[0]["params"] == {"limit": 100}
    assert session.calls[1]["params"] == {"limit": 100, "cursor": "c99"}
    assert len(session.calls) == 2  # a short page ends the walk


def test_pagination_stops_on_an_empty_page():
    full = [{"cursor": f"c{i}", "deploy": {"id": f"dep-{i}"}} for i in range(100)]
    c, session, _ = client({("GET", f"/services/{SRV}/deploys"): [response(200, full), response(200, [])]})
    assert len(c.list_deploys(SRV)) == 100
    assert len(session.calls) == 2


def test_pagination_never_loops_on_a_repeated_cursor():
    full = [{"cursor": "same", "service": {"id": f"srv-{i}"}} for i in range(100)]
    c, session, _ = client({("GET", "/services"): [response(200, full)] * 5})
    assert len(c.list_services()) == 200
    assert len(session.calls) == 2


def test_bare_list_credentials_is_read_once_without_cursor():
    creds = [{"username": "app", "default": True, "createdAt": "2024-01-01T00:00:00Z", "openConnections": 2}]
    c, session, _ = client({("GET", "/postgres/dpg-x-a/credentials"): response(200, creds)})
    assert c.list_credentials("dpg-x-a") == creds
    assert session.calls[0]["params"] == {}


def test_list_filters_encoding():
    c, session, _ = client({("GET", "/services"): response(200, []),
                            ("GET", f"/services/{SRV}/deploys"): response(200, [])})
    c.list_services(name=["a", "b"], service_type="web_service")
    c.list_deploys(SRV, status="queued", limit=1, max_items=1)
    assert session.calls[0]["params"] == {"name": "a,b", "type": "web_service", "limit": 100}
    assert session.calls[1]["params"] == {"status": ["queued"], "limit": 1}


# -- retries -------------------------------------------------------------------------

def test_429_honours_retry_after():
    c, _session, sleeper = client({("GET", f"/services/{SRV}"): [
        response(429, {"message": "rate limited"}, {"Retry-After": "7", "Ratelimit-Reset": "50"}),
        response(200, SERVICE)]})
    assert c.get_service(SRV)["id"] == SRV
    assert sleeper.slept == [7.0]


def test_429_without_retry_after_uses_ratelimit_reset_seconds():
    c, _, sleeper = client({("GET", f"/services/{SRV}"): [
        response(429, {"message": "rate limited"}, {"Ratelimit-Reset": "12", "Ratelimit-Remaining": "0"}),
        response(200, SERVICE)]})
    c.get_service(SRV)
    assert sleeper.slept == [12.0]


def test_429_retry_after_as_http_date_or_garbage():
    c, _, sleeper = client({("GET", f"/services/{SRV}"): [
        response(429, {}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),   # in the past: no wait
        response(429, {}, {"Retry-After": "soon", "Ratelimit-Reset": "4"}),    # unreadable: use Reset
        response(200, SERVICE)]})
    c.get_service(SRV)
    assert sleeper.slept == [0.0, 4.0]


def test_429_retry_adds_jitter():
    sleeper = Sleeper()
    session = FakeSession({("GET", f"/services/{SRV}"): [response(429, {}, {"Retry-After": "2"}),
                                                         response(200, SERVICE)]})
    c = RenderClient(KEY, BASE, session=session, sleep=sleeper.sleep, jitter=lambda: 0.25)
    c.get_service(SRV)
    assert sleeper.slept == [2.25]


def test_429_wait_beyond_the_budget_fails_instead_of_hanging():
    c, _, sleeper = client({("GET", f"/services/{SRV}"): [response(429, {}, {"Retry-After": "3600"})]},
                           max_total_wait=60)
    with pytest.raises(RenderAPIError, match=r"rate limit.*3600s would exceed the 60s retry budget"):
        c.get_service(SRV)
    assert sleeper.slept == []


def test_5xx_is_retried_with_exponential_backoff_and_is_bounded():
    c, session, sleeper = client({("GET", f"/services/{SRV}"): [response(503, {"message": "down"})] * 4},
                                 max_attempts=4, backoff=1.0)
    with pytest.raises(RenderAPIError) as err:
        c.get_service(SRV)
    assert err.value.status == 503
    assert "gave up after 4 attempts" in str(err.value)
    assert f"service {SRV}" in str(err.value)
    assert session.count("GET", f"/services/{SRV}") == 4
    assert sleeper.slept == [0.5, 1.0, 2.0]  # base * 2^n * (0.5 + jitter/2), jitter 0


def test_backoff_is_capped():
    c, _, sleeper = client({("GET", f"/services/{SRV}"): [response(500)] * 6 + [response(200, SERVICE)]},
                           max_attempts=7, backoff=4.0, max_backoff=10.0)
    c.get_service(SRV)
    assert max(sleeper.slept) == 5.0


def test_connection_errors_and_timeouts_are_retried_for_reads():
    c, _session, sleeper = client({("GET", f"/services/{SRV}"): [
        refused(), dropped(), requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectTimeout("connect timed out"), response(200, SERVICE)]})
    assert c.get_service(SRV)["id"] == SRV
    assert len(sleeper.slept) == 4


def test_4xx_other_than_429_is_not_retried():
    c, session, _ = client({("PATCH", f"/services/{SRV}"): [response(400, {"message": "bad field"})]})
    expected = r"service srv-\w+: PATCH /services/srv-\w+ failed \(HTTP 400\): bad"
    with pytest.raises(RenderAPIError, match=expected):
        c.set_maintenance_mode(SRV, True)
    assert session.count("PATCH", f"/services/{SRV}") == 1


def test_put_env_var_is_retried_as_idempotent():
    c, session, _ = client({("PUT", f"/services/{SRV}/env-vars/DATABASE_URL"): [
        dropped(), response(200, {"key": "DATABASE_URL", "value": "x"})]})
    assert c.put_env_var(SRV, "DATABASE_URL", "x") == {"key": "DATABASE_URL", "value": "x"}
    assert session.calls[-1]["body"] == {"value": "x"}


def test_delete_retried_after_it_took_effect_is_success():
    c, session, _ = client({("DELETE", f"/services/{SRV}/env-vars/OLD"): [
        response(502, {"message": "bad gateway"}), response(404, {"message": "not found: OLD"})]})
    c.delete_env_var(SRV, "OLD")
    assert session.count("DELETE", f"/services/{SRV}/env-vars/OLD") == 2


def test_delete_of_a_missing_var_on_first_try_is_an_error():
    c, _, _ = client({("DELETE", f"/services/{SRV}/env-vars/OLD"): [response(404, {"message": "not found"})]})
    with pytest.raises(RenderAPIError, match=r"env var OLD of service srv-\w+ not found \(HTTP 404\)"):
        c.delete_env_var(SRV, "OLD")


# -- POSTs that may have taken effect ------------------------------------------------

def deploys_list(*ids):
    return [{"cursor": f"c-{i}", "deploy": {"id": i, "status": "build_in_progress"}} for i in ids]


def test_create_deploy_201_returns_the_deploy():
    c, session, _ = client({
        ("GET", f"/services/{SRV}/deploys"): response(200, deploys_list("dep-old")),
        ("POST", f"/services/{SRV}/deploys"): response(201, {"id": "dep-new", "status": "build_in_progress"}),
    })
    deploy, status = c.create_deploy(SRV)
    assert (deploy["id"], status) == ("dep-new", 201)
    assert session.calls[-1]["body"] == {}


def test_create_deploy_202_with_empty_body_finds_the_queued_deploy():
    c, _, sleeper = client({
        ("GET", f"/services/{SRV}/deploys"): [response(200, deploys_list("dep-old")),
                                              response(200, deploys_list("dep-old")),
                                              response(200, deploys_list("dep-new", "dep-old"))],
        ("POST", f"/services/{SRV}/deploys"): response(202),
    })
    deploy, status = c.create_deploy(SRV)
    assert (deploy["id"], status) == ("dep-new", 202)
    assert sleeper.slept == [1.0]


def test_create_deploy_not_retried_when_the_list_shows_it_took_effect():
    c, session, _ = client({
        ("GET", f"/services/{SRV}/deploys"): [response(200, deploys_list("dep-old")),
                                              response(200, deploys_list("dep-new", "dep-old"))],
        ("POST", f"/services/{SRV}/deploys"): [response(500, {"message": "oops"})],
    })
    deploy, _ = c.create_deploy(SRV)
    assert deploy["id"] == "dep-new"
    assert session.count("POST", f"/services/{SRV}/deploys") == 1


def test_create_deploy_retried_after_the_list_shows_it_did_not_take_effect():
    c, session, sleeper = client({
        ("GET", f"/services/{SRV}/deploys"): response(200, deploys_list("dep-old")),
        ("POST", f"/services/{SRV}/deploys"): [dropped(), response(201, {"id": "dep-new"})],
    })
    deploy, _ = c.create_deploy(SRV)
    assert deploy["id"] == "dep-new"
    assert session.count("POST", f"/services/{SRV}/deploys") == 2
    # Unanswered: the list was watched for twice the read timeout before the retry.
    assert c.in_flight_wait == 60 and sum(sleeper.slept[:-1]) == 60
    assert session.count("GET", f"/services/{SRV}/deploys") == 1 + 13


def test_an_unanswered_create_deploy_is_watched_until_render_finishes_it():
    """Render answers after the client's read timeout: the deploy appears a few seconds
    later. It is found and returned; no second POST, so no second deploy."""
    c, session, sleeper = client({
        ("GET", f"/services/{SRV}/deploys"): [response(200, deploys_list("dep-old"))] * 3
        + [response(200, deploys_list("dep-late", "dep-old"))],
        ("POST", f"/services/{SRV}/deploys"): [requests.exceptions.ReadTimeout("read timed out")],
    })
    deploy, status = c.create_deploy(SRV)
    assert (deploy["id"], status) == ("dep-late", 201)
    assert session.count("POST", f"/services/{SRV}/deploys") == 1
    assert sleeper.slept == [5.0, 5.0]  # two polls of the list, then it was there


def test_the_in_flight_watch_follows_the_read_timeout_and_is_configurable():
    assert RenderClient(KEY, BASE, timeout=3).in_flight_wait == 6
    assert RenderClient(KEY, BASE, timeout=3, in_flight=1.5).in_flight_wait == 1.5


def test_an_answered_5xx_on_a_create_is_checked_once_without_waiting():
    c, session, sleeper = client({
        ("GET", f"/services/{SRV}/deploys"): response(200, deploys_list("dep-old")),
        ("POST", f"/services/{SRV}/deploys"): [response(503, {}), response(201, {"id": "dep-new"})],
    })
    assert c.create_deploy(SRV)[0]["id"] == "dep-new"
    assert session.count("GET", f"/services/{SRV}/deploys") == 2 and sleeper.slept == [0.5]  # the backoff only


def test_a_gateway_timeout_on_a_create_credential_is_watched_before_a_retry():
    c, session, _ = client({
        ("POST", "/postgres/dpg-x-a/credentials"): [response(504)],
        ("GET", "/postgres/dpg-x-a/credentials"): [response(200, [])] * 2
        + [response(200, [{"username": "app_v2", "default": True}])],
    })
    assert c.create_credential("dpg-x-a", "app_v2").recovered
    assert session.count("POST", "/postgres/dpg-x-a/credentials") == 1


def test_create_deploy_read_timeout_is_ambiguous_and_checked():
    c, session, _ = client({
        ("GET", f"/services/{SRV}/deploys"): [response(200, deploys_list("dep-old")),
                                              response(200, deploys_list("dep-new", "dep-old"))],
        ("POST", f"/services/{SRV}/deploys"): [requests.exceptions.ReadTimeout("read timed out")],
    })
    assert c.create_deploy(SRV)[0]["id"] == "dep-new"
    assert session.count("POST", f"/services/{SRV}/deploys") == 1


def test_create_deploy_429_and_refused_connection_retry_without_a_check():
    c, session, _ = client({
        ("GET", f"/services/{SRV}/deploys"): [response(200, [])],
        ("POST", f"/services/{SRV}/deploys"): [response(429, {}, {"Retry-After": "1"}), refused(),
                                               response(201, {"id": "dep-new"})],
    })
    assert c.create_deploy(SRV)[0]["id"] == "dep-new"
    assert session.count("GET", f"/services/{SRV}/deploys") == 1  # only the snapshot


def test_create_credential_not_retried_when_the_user_exists():
    creds_before = [{"username": "app", "default": True}]
    creds_after = [{"username": "app", "default": False}, {"username": "app_v2", "default": True}]
    c, session, _ = client({
        ("POST", "/postgres/dpg-x-a/credentials"): [response(503, {"message": "unavailable"})],
        ("GET", "/postgres/dpg-x-a/credentials"): [response(200, creds_after)],
    })
    result = c.create_credential("dpg-x-a", "app_v2")
    assert result.recovered and result.body["username"] == "app_v2"
    assert session.count("POST", "/postgres/dpg-x-a/credentials") == 1
    assert creds_before  # the list before is not needed: the username is the identity


def test_create_credential_retried_once_when_the_user_is_absent():
    c, session, _ = client({
        ("POST", "/postgres/dpg-x-a/credentials"): [dropped(), response(202)],
        ("GET", "/postgres/dpg-x-a/credentials"): response(200, [{"username": "app", "default": True}]),
    })
    result = c.create_credential("dpg-x-a", "app_v2")
    assert result.status == 202 and not result.recovered
    assert session.count("POST", "/postgres/dpg-x-a/credentials") == 2
    assert session.calls[-1]["body"] == {"username": "app_v2"}


def test_create_credential_conflict_on_retry_is_resolved_by_the_list():
    c, session, _ = client({
        ("POST", "/postgres/dpg-x-a/credentials"): [response(503), response(409, {"message": "exists"})],
        ("GET", "/postgres/dpg-x-a/credentials"): [response(200, []),
                                                   response(200, [{"username": "app_v2", "default": True}])],
    })
    assert c.create_credential("dpg-x-a", "app_v2").recovered
    assert session.count("POST", "/postgres/dpg-x-a/credentials") == 2


def test_create_export_not_retried_when_the_list_shows_a_new_export():
    old = {"id": "exp-old", "createdAt": "2026-11-01T00:00:00Z"}
    new = {"id": "exp-new", "createdAt": "2026-11-24T00:00:00Z"}
    c, session, _ = client({
        ("POST", "/postgres/dpg-x-a/export"): [response(503, {"message": "unavailable"})],
        ("GET", "/postgres/dpg-x-a/export"): [response(200, [old]), response(200, [new, old])],
    })
    result = c.create_export("dpg-x-a")
    assert result.recovered and result.body["id"] == "exp-new"
    assert session.count("POST", "/postgres/dpg-x-a/export") == 1


def test_create_export_retried_when_the_list_shows_none_new():
    old = [{"id": "exp-old", "createdAt": "2026-11-01T00:00:00Z"}]
    c, session, _ = client({
        ("POST", "/postgres/dpg-x-a/export"): [dropped(), response(202)],
        ("GET", "/postgres/dpg-x-a/export"): response(200, old),
    })
    assert c.create_export("dpg-x-a").status == 202
    assert session.count("POST", "/postgres/dpg-x-a/export") == 2


def test_ambiguous_post_without_a_check_is_never_retried():
    c, session, _ = client({("POST", f"/services/{SRV}/restart"): [response(500)]})
    with pytest.raises(RenderAPIError, match="may have taken effect"):
        c.request("POST", f"/services/{SRV}/restart", resource=f"service {SRV}")
    assert session.count("POST", f"/services/{SRV}/restart") == 1


def test_suspend_checks_state_before_retrying():
    suspended = dict(SERVICE, suspended="suspended")
    c, session, _ = client({
        ("POST", f"/services/{SRV}/suspend"): [dropped()],
        ("GET", f"/services/{SRV}"): [response(200, suspended)],
    })
    assert c.suspend_service(SRV).recovered
    assert session.count("POST", f"/services/{SRV}/suspend") == 1


# Render's recorded 201 bodies (RENDER_API.md section 5) carry explicit nulls.
RECORDED_201 = {"id": "dep-new", "commit": None, "image": {"ref": "docker.io/library/nginx:latest",
                                                           "sha": "sha256:0"},
                "status": "pre_deploy_in_progress", "trigger": "api", "createdAt": "2025-01-01T00:00:00Z",
                "updatedAt": "2025-01-01T00:00:00Z", "finishedAt": None}


def load_render_deploy():
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "..", "library", "render_deploy.py")
    spec = importlib.util.spec_from_file_location("render_deploy_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_explicit_nulls_in_deploys_and_events_are_tolerated():
    ended = dict(RECORDED_201, status="pre_deploy_failed", finishedAt="2025-01-01T00:01:00Z")
    c, _, _ = client({
        ("GET", f"/services/{SRV}/deploys"): [
            response(200, [{"cursor": "c1", "deploy": dict(RECORDED_201, id="dep-old", status="live")}]),
            response(200, [{"cursor": "c1", "deploy": dict(RECORDED_201, id="dep-old", status="live")}])],
        ("POST", f"/services/{SRV}/deploys"): response(201, RECORDED_201),
        ("GET", f"/services/{SRV}/deploys/dep-new"): [response(200, RECORDED_201), response(200, ended)],
        ("GET", f"/services/{SRV}/events"): response(200, [
            {"cursor": "e1", "event": {"id": "evt-1", "type": "pre_deploy_ended", "timestamp": "t",
                                       "details": {"deployId": "dep-new", "reason": None}}}]),
        ("GET", "/logs"): response(200, {"hasMore": False, "nextStartTime": None, "nextEndTime": None,
                                         "logs": [{"id": "l1", "message": None, "timestamp": "t",
                                                   "labels": []}]}),
    })
    deploy, status = c.create_deploy(SRV)
    assert (deploy["id"], status, deploy["commit"], deploy["finishedAt"]) == ("dep-new", 201, None, None)
    done = c.wait_for_deploy(SRV, "dep-new", interval=1)
    assert done["status"] == "pre_deploy_failed"
    module = load_render_deploy()
    failure = module.failure_details(c, {"id": SRV, "ownerId": "tea-x"}, done, 10)
    assert failure["errors"] == [] and failure["logs"] == [""]
    assert failure["events"]["pre_deploy_ended"]["details"]["reason"] is None
    assert module.pre_deploy_exit_code(failure) is None
    assert module.pre_deploy_exit_code({"events": {"pre_deploy_ended": {"details": None}}}) is None
    assert module.pre_deploy_exit_code({"events": {"pre_deploy_ended": {"details": {
        "reason": {"failure": {"nonZeroExit": 2}}}}}}) == 2


def test_scrub_masks_the_key_and_passwords_in_log_lines():
    c, _, _ = client({})
    line = (f"connect postgresql://app:pa%2Fss@db:5432/x failed; key {KEY}; "
            "PGPASSWORD=hunter2 psql -h db; see https://example.com/a@b")
    assert c.scrub(line) == ("connect postgresql://app:********@db:5432/x failed; key <redacted>; "
                             "PGPASSWORD=******** psql -h db; see https://example.com/a@b")
    assert c.scrub(None) == ""


# -- deploy waiting, logs ----------------------------------------------------------

def test_wait_for_deploy_polls_to_a_terminal_state():
    c, _, sleeper = client({("GET", f"/services/{SRV}/deploys/dep-1"): [
        response(200, {"id": "dep-1", "status": s}) for s in
        ("queued", "build_in_progress", "pre_deploy_in_progress", "update_in_progress", "live")]})
    assert c.wait_for_deploy(SRV, "dep-1", interval=2)["status"] == "live"
    assert sleeper.slept == [2, 2, 2, 2]


def test_wait_for_deploy_times_out_with_a_clear_message():
    c, _, _ = client({("GET", f"/services/{SRV}/deploys/dep-1"): response(200, {"id": "dep-1",
                                                                                 "status": "queued"})})
    with pytest.raises(RenderAPIError, match=r"deploy dep-1 of service srv-\w+ still queued after 10s"):
        c.wait_for_deploy(SRV, "dep-1", timeout=10, interval=3)


def test_logs_follow_has_more_with_next_times():
    def page(n, more, start, end):
        return response(200, {"hasMore": more, "nextStartTime": start, "nextEndTime": end,
                              "logs": [{"id": f"l{n}-{i}", "message": "m", "timestamp": "t", "labels": []}
                                       for i in range(2)]})
    t0, t1, t5 = "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z", "2024-01-01T00:05:00Z"
    c, session, _ = client({("GET", "/logs"): [page(1, True, t0, t5), page(2, False, t0, t1)]})
    result = c.query_logs("tea-x", [SRV], start_time="2024-01-01T00:00:00Z", filters={"type": "app"})
    assert [entry["id"] for entry in result["logs"]] == ["l1-0", "l1-1", "l2-0", "l2-1"]
    assert result["has_more"] is False
    assert session.calls[0]["params"]["resource"] == [SRV]
    assert session.calls[0]["params"]["type"] == ["app"]
    assert session.calls[1]["params"]["startTime"] == "2024-01-01T00:00:00Z"
    assert session.calls[1]["params"]["endTime"] == "2024-01-01T00:05:00Z"


def test_logs_max_logs_keeps_has_more():
    body = {"hasMore": True, "nextStartTime": "a", "nextEndTime": "b",
            "logs": [{"id": str(i), "message": "m", "timestamp": "t", "labels": []} for i in range(5)]}
    c, session, _ = client({("GET", "/logs"): [response(200, body)] * 3})
    result = c.query_logs("tea-x", [SRV], max_logs=7)
    assert len(result["logs"]) == 7 and result["has_more"] is True
    assert len(session.calls) == 2


# -- error messages and the key -----------------------------------------------------

def test_401_says_the_key_was_rejected():
    c, _, _ = client({("GET", f"/services/{SRV}"): response(401, {"message": "unauthorized"})})
    with pytest.raises(RenderAPIError, match=r"^Render API key rejected \(HTTP 401\)") as err:
        c.get_service(SRV)
    assert err.value.status == 401


def test_404_names_the_resource():
    c, _, _ = client({("GET", f"/services/{SRV}"): response(404, {"message": f"not found: {SRV}"},
                                                            {"Render-Request-Id": "api-1/2"})})
    with pytest.raises(RenderAPIError) as err:
        c.get_service(SRV)
    assert str(err.value).startswith(f"service {SRV} not found (HTTP 404)")
    assert "api-1/2" in str(err.value)


def test_get_env_var_returns_none_for_a_missing_key_but_fails_for_a_missing_service():
    c, _, _ = client({("GET", f"/services/{SRV}/env-vars/NOPE"): response(404, {"message": "not found"}),
                      ("GET", f"/services/{SRV}"): response(200, SERVICE)})
    assert c.get_env_var(SRV, "NOPE") is None
    c, _, _ = client({("GET", f"/services/{SRV}/env-vars/NOPE"): response(404, {"message": "not found"}),
                      ("GET", f"/services/{SRV}"): response(404, {"message": "not found"})})
    with pytest.raises(RenderAPIError, match=f"service {SRV} not found"):
        c.get_env_var(SRV, "NOPE")


def test_key_never_appears_in_repr_errors_or_logs(caplog):
    caplog.set_level(logging.DEBUG)
    echo = {"message": f"bad token Bearer {KEY}"}
    c, _, _ = client({("GET", f"/services/{SRV}"): [response(401, echo)],
                      ("GET", "/services"): [dropped()] * 5,
                      ("POST", f"/services/{SRV}/restart"): [response(500, echo)]})
    texts = [repr(c), str(c), repr(c._key), str(c._key), repr(c.__dict__)]
    for call in (lambda: c.get_service(SRV), c.list_services,
                 lambda: c.request("POST", f"/services/{SRV}/restart")):
        with pytest.raises(RenderAPIError) as err:
            call()
        texts += [str(err.value), repr(err.value), repr(err.value.__dict__),
                  repr(err.value.__cause__), repr(err.value.__context__)]
    texts.append(caplog.text)
    for text in texts:
        assert KEY not in text
    with pytest.raises(TypeError):
        pickle.dumps(c._key)


def test_a_bad_base_url_fails_at_once():
    sleeper = Sleeper()
    c = RenderClient(KEY, "api.render.com/v1", sleep=sleeper.sleep)
    with pytest.raises(RenderAPIError, match=r"invalid Render API base URL 'api\.render\.com/v1'"):
        c.get_service(SRV)
    assert sleeper.slept == []


def test_missing_key_is_a_clear_error():
    with pytest.raises(RenderAPIError, match="no Render API key"):
        RenderClient("", BASE)


def test_find_service_by_name():
    c, session, _ = client({("GET", "/services"): response(200, [
        {"cursor": "a", "service": {"id": "srv-1", "name": "api"}},
        {"cursor": "b", "service": {"id": "srv-2", "name": "api-staging"}}])})
    assert c.find_service("api")["id"] == "srv-1"
    assert session.calls[0]["params"]["name"] == "api"
    with pytest.raises(RenderAPIError, match="service named 'web' not found"):
        c.find_service("web")


def test_module_utils_has_no_ansible_import_at_load():
    # The simulator's tests and tools import the client without an AnsibleModule.
    assert render_api.HAS_REQUESTS
