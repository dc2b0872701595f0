"""RenderHTTP against a scripted fake transport: authentication, pagination, every retry
path, error messages, and the key never appearing in any output. Sleep and jitter are
injected, so nothing here waits."""

from __future__ import annotations

import logging
import pickle

import pytest
import requests
from ansible.module_utils import render_http
from ansible.module_utils.render_api import RenderClient
from ansible.module_utils.render_http import RenderAPIError

from tests.unit.render_fakes import BASE, KEY, SERVICE, SRV, FakeSession, Sleeper, client, dropped, refused, response

# -- auth and pagination ---------------------------------------------------------

def test_bearer_auth_and_json_headers():
    c, session, _ = client({("GET", f"/services/{SRV}"): response(200, SERVICE)})
    assert c.get_service(SRV)["id"] == SRV
    headers = session.calls[0]["headers"]
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["Accept"] == "application/json"


def test_base_url_is_configurable_and_defaults_to_render():
    assert RenderClient(KEY).base_url == "https://api.render.com/v1"
    # The roles pass "" (and the modules None) for "Render's own": stated only in render_http.
    assert RenderClient(KEY, "").base_url == RenderClient(KEY, None).base_url == "https://api.render.com/v1"
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


def test_module_utils_has_no_ansible_import_at_load():
    # The simulator's tests and tools import the client without an AnsibleModule.
    assert render_http.HAS_REQUESTS
