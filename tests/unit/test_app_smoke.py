"""The smoke requests' logic without a server: templating with captures, what is refused before
anything is sent, the run (stop at the first failure, cleanup always, skipping what was never
created), and that no header value (nor a captured token) reaches a result. Also the probe
behind the health, frontend and maintenance checks."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.app_http import Answer, join_url, probe, where
from ansible.module_utils.app_smoke import (
    CLEANUP,
    SMOKE,
    extract,
    fill,
    normalize,
    placeholders,
    plan_lines,
    plan_problems,
    run_requests,
)
from ansible.module_utils.redaction import credential_parts

PUBLIC = "https://app.example"
TOKEN = "tok_SmokeSecret0123456789"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}

SMOKE_REQUESTS = [
    {"name": "create organization", "method": "POST", "url": "/api/organizations", "body": {"name": "smoke"},
     "status": 201, "capture": {"org_id": "id"}},
    {"name": "create deal", "method": "POST", "url": "/api/deals",
     "body": {"organization_id": "${org_id}", "title": "deal of ${org_id}"}, "status": 201,
     "capture": {"deal_id": "id"}},
    {"name": "read deal", "url": "/api/deals/${deal_id}"},
]
CLEANUP_REQUESTS = [
    {"name": "delete deal", "method": "DELETE", "url": "/api/deals/${deal_id}", "status": [204, 404]},
    {"name": "delete organization", "method": "DELETE", "url": "/api/organizations/${org_id}", "status": [204, 404]},
]


class FakeApp:
    """Answers like the simulator's app; ``fail`` maps "METHOD /path" prefixes to a status."""

    def __init__(self, fail=None, echo_token=False):
        self.sent = []
        self.fail = fail or {}
        self.echo_token = echo_token
        self.next_id = 0

    def __call__(self, method, url, *, headers=None, body=None, timeout=10):
        self.sent.append({"method": method, "url": url, "headers": dict(headers or {}), "body": body})
        path = url[len(PUBLIC):]
        for prefix, status in self.fail.items():
            if f"{method} {path}".startswith(prefix):
                text = json.dumps({"error": f"boom {headers.get('Authorization') if self.echo_token else ''}"})
                return Answer(status, json.loads(text), text, is_json=True)
        if method == "POST":
            self.next_id += 1
            record = {"id": f"id-{self.next_id}", **(body or {})}
            return Answer(201, record, json.dumps(record), is_json=True)
        if method == "DELETE":
            return Answer(204)
        return Answer(200, {"id": path.rsplit("/", 1)[-1]}, "{}", is_json=True)


def prepared(smoke=SMOKE_REQUESTS, cleanup=CLEANUP_REQUESTS):
    smoke_n, problems = normalize(smoke, SMOKE)
    cleanup_n, more = normalize(cleanup, CLEANUP)
    assert problems + more == []
    return smoke_n, cleanup_n


def test_placeholders_fill_keeping_a_whole_value_typed():
    captures = {"org_id": 42, "name": "acme"}
    assert placeholders({"a": ["${org_id}", "x ${name}"], "b": 1}) == {"org_id", "name"}
    assert fill({"id": "${org_id}", "label": "org ${org_id} of ${name}", "n": [True, "${name}"]}, captures) == {
        "id": 42, "label": "org 42 of acme", "n": [True, "acme"]}
    assert fill("$notme ${org_id}", captures) == "$notme 42"


def test_extract_walks_dotted_paths_and_list_indexes():
    document = {"data": {"items": [{"id": "a"}, {"id": "b"}]}}
    assert extract(document, "data.items.1.id") == "b"
    for missing in ("data.nope", "data.items.5.id", "data.items.x"):
        with pytest.raises(LookupError):
            extract(document, missing)


def test_join_url_takes_absolute_urls_and_joins_paths_never_guessing():
    assert join_url(PUBLIC + "/", "/health") == PUBLIC + "/health"
    assert join_url("", "https://front.example/") == "https://front.example/"
    for bad_public, target in ((PUBLIC, "health"), ("", "/health"), ("ftp://x", "/health")):
        with pytest.raises(ValueError):
            join_url(bad_public, target)
    assert where("https://app.example/cb?token=abc") == "https://app.example/cb"


def test_bad_requests_are_refused_before_anything_is_sent_naming_them_never_a_value():
    smoke, problems = normalize([
        {"name": "", "url": "/x"},
        {"name": "bad status", "url": "/x", "status": 700},
        {"name": "bad method", "method": "BREW", "url": "/x"},
        {"name": "bad capture", "url": "/x", "capture": {"not a name": "id"}},
        {"name": "bad header", "url": "/x", "headers": {"X-Key": "CHANGE_ME_token", "Bad Name": "v"}},
    ], SMOKE)
    text = "; ".join(problems)
    for expected in ("smoke request #1: name is required", "bad status): status must be an HTTP status",
                     "bad method): method must be one of", "bad capture): capture maps names",
                     "header X-Key still holds a CHANGE_ME placeholder", "'Bad Name' is not a valid header name"):
        assert expected in text, expected
    assert "CHANGE_ME_token" not in text

    smoke, cleanup = prepared(
        smoke=[{"name": "a", "url": "/api/x/${later}", "capture": {"first": "id"}},
               {"name": "b", "url": "/api/y", "capture": {"later": "id", "first": "id"}},
               {"name": "a", "url": "relative"}],
        cleanup=[{"name": "c", "url": "/api/x/${never}"}])
    problems = plan_problems(smoke, cleanup, {"Authorization": "Bearer CHANGE_ME"}, PUBLIC)
    text = "; ".join(problems)
    for expected in ("smoke request 'a' uses ${later}, which no earlier smoke request captures",
                     "smoke request 'b' captures first again", "smoke request 'a': two requests have this name",
                     "is neither an http(s) URL nor a path", "cleanup request 'c' uses ${never}, which no smoke",
                     "app_deploy_smoke_headers: header Authorization still holds a CHANGE_ME placeholder"):
        assert expected in text, expected


def test_check_mode_plan_names_method_url_and_header_names_only():
    smoke, cleanup = prepared(smoke=[dict(SMOKE_REQUESTS[0], headers={"X-Tenant": "t-secret-1"})])
    lines = plan_lines(smoke, cleanup, PUBLIC)
    assert lines[0] == ("smoke 'create organization': POST https://app.example/api/organizations (expects 201; "
                        "captures org_id; headers X-Tenant)")
    assert lines[1].startswith("cleanup 'delete deal': DELETE https://app.example/api/deals/${deal_id}")
    assert "t-secret-1" not in json.dumps(lines)


def test_every_request_passes_captures_flow_and_the_cleanup_runs():
    smoke, cleanup = prepared()
    app = FakeApp()
    result = run_requests(smoke, cleanup, public_url=PUBLIC, headers=HEADERS, send=app)
    assert result["ok"] is True and result["failed_request"] is None and result["cleanup_failed"] == []
    assert [(s["method"], s["url"][len(PUBLIC):]) for s in app.sent] == [
        ("POST", "/api/organizations"), ("POST", "/api/deals"), ("GET", "/api/deals/id-2"),
        ("DELETE", "/api/deals/id-2"), ("DELETE", "/api/organizations/id-1")]
    assert app.sent[1]["body"] == {"organization_id": "id-1", "title": "deal of id-1"}
    assert all(s["headers"]["Authorization"] == f"Bearer {TOKEN}" for s in app.sent)
    assert result["msg"] == "3 smoke requests answered as expected; cleanup: 2 of 2 answered as expected"
    assert result["captured"] == ["deal_id", "org_id"]


def test_a_failing_smoke_request_stops_the_others_and_the_cleanup_still_runs_what_it_can():
    smoke, cleanup = prepared()
    app = FakeApp(fail={"POST /api/deals": 500}, echo_token=True)
    result = run_requests(smoke, cleanup, public_url=PUBLIC, headers=HEADERS, send=app)
    assert result["ok"] is False and result["failed_request"] == "create deal"
    by_name = {r["name"]: r for r in result["requests"]}
    assert by_name["create deal"]["status"] == 500 and by_name["create deal"]["ok"] is False
    assert by_name["read deal"]["skipped"] and "not sent: the smoke request 'create deal' failed" in \
        by_name["read deal"]["msg"]
    # The deal was never created: its delete is skipped; the organization is deleted.
    assert by_name["delete deal"]["skipped"] and "${deal_id} was never captured" in by_name["delete deal"]["msg"]
    assert by_name["delete organization"]["ok"] is True
    assert [s["method"] + " " + s["url"][len(PUBLIC):] for s in app.sent][-1] == "DELETE /api/organizations/id-1"
    assert result["msg"].startswith("smoke request 'create deal' (POST https://app.example/api/deals) answered "
                                    "500, expected 201: {\"error\": \"boom [redacted]\"} (1 of 3 smoke")
    assert TOKEN not in json.dumps(result)


def test_a_failing_cleanup_fails_the_run_saying_test_data_may_be_left():
    smoke, cleanup = prepared()
    result = run_requests(smoke, cleanup, public_url=PUBLIC, headers=HEADERS,
                          send=FakeApp(fail={"DELETE /api/organizations": 409}))
    assert result["ok"] is False and result["failed_request"] is None
    assert result["cleanup_failed"] == ["delete organization"]
    assert "test data may be left behind: cleanup request 'delete organization'" in result["msg"]


def test_no_answer_a_missing_field_or_a_non_json_answer_fail_the_request():
    smoke, cleanup = prepared(cleanup=[])

    def refused(method, url, **_):
        return Answer(None, error="could not connect (ConnectionRefusedError)")

    result = run_requests(smoke, cleanup, public_url=PUBLIC, send=refused)
    assert "got no answer: could not connect (ConnectionRefusedError)" in result["msg"]

    def no_id(method, url, **_):
        return Answer(201, {"name": "x"}, "{}", is_json=True)

    result = run_requests(smoke, cleanup, public_url=PUBLIC, send=no_id)
    assert "answered 201 but without the field id (a string or a number), so ${org_id} is unknown" in result["msg"]

    def html(method, url, **_):
        return Answer(201, None, "<html>", is_json=False)

    assert "but without a JSON answer" in run_requests(smoke, cleanup, public_url=PUBLIC, send=html)["msg"]


def test_a_captured_token_used_in_a_header_is_a_secret_too():
    smoke, cleanup = prepared(smoke=[
        {"name": "login", "method": "POST", "url": "/api/organizations", "body": {"name": "session-tok-998877"},
         "status": 201, "capture": {"session": "name"}},
        {"name": "use it", "url": "/api/organizations/${session}", "headers": {"X-Session": "${session}"}},
    ], cleanup=[])
    app = FakeApp()
    result = run_requests(smoke, cleanup, public_url=PUBLIC, send=app)
    assert app.sent[1]["headers"]["X-Session"] == "session-tok-998877"
    assert "session-tok-998877" not in json.dumps(result)
    assert result["requests"][1]["url"] == "https://app.example/api/organizations/[redacted]"


def test_credential_parts_keep_short_values_and_split_the_scheme():
    assert credential_parts(["Bearer abcdef", "1", "x", None, True]) == ["Bearer abcdef", "abcdef"]


def test_probe_retries_until_the_expected_status_and_says_what_it_got():
    answers = iter([Answer(200), Answer(200), Answer(503)])
    slept = []
    result = probe("https://app.example/health?k=1", expect=[503], attempts=5, delay=2,
                   send=lambda *a, **k: next(answers), sleep=slept.append, clock=lambda: 0.0)
    assert result == {"url": "https://app.example/health", "expected": [503], "status": 503, "ok": True,
                      "attempts": 3, "seconds": 0.0, "msg": "https://app.example/health answered 503"}
    assert slept == [2, 2]
    stuck = probe("https://app.example/health", expect=503, attempts=2, delay=0, send=lambda *a, **k: Answer(200),
                  sleep=lambda s: None, clock=lambda: 0.0)
    assert not stuck["ok"] and stuck["msg"] == ("https://app.example/health answered 200, expected 503 "
                                                "(after 2 attempts over 0 s)")
    down = probe("https://app.example/", expect=200, send=lambda *a, **k: Answer(None, error="no answer within 5 s"),
                 sleep=lambda s: None, clock=lambda: 0.0)
    assert down["status"] is None and "https://app.example/ no answer within 5 s, expected 200" in down["msg"]
