"""RenderClient's resources against a scripted fake transport: the check-before-retry of
POSTs that may have taken effect, deploys, logs, lookups by name. Sleep and jitter are
injected, so nothing here waits."""

from __future__ import annotations

import pytest
import requests
from ansible.module_utils.render_api import RenderClient
from ansible.module_utils.render_http import RenderAPIError

from tests.unit.render_fakes import BASE, KEY, SERVICE, SRV, client, dropped, refused, response

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
    assert c.scrub(line) == ("connect postgresql://app:********@db:5432/x failed; key [redacted]; "
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


def test_find_service_by_name():
    c, session, _ = client({("GET", "/services"): response(200, [
        {"cursor": "a", "service": {"id": "srv-1", "name": "api"}},
        {"cursor": "b", "service": {"id": "srv-2", "name": "api-staging"}}])})
    assert c.find_service("api")["id"] == "srv-1"
    assert session.calls[0]["params"]["name"] == "api"
    with pytest.raises(RenderAPIError, match="service named 'web' not found"):
        c.find_service("web")
