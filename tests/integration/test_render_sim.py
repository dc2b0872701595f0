"""The Render API simulator against a real Render-like cluster: credentials are real roles,
deploys run real commands and restart a real process, limits and faults behave as documented.
The simulator as a process (its command line, the background launch) is in test_render_sim_process.py."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import psycopg2
import pytest
import requests
from ansible.module_utils.render_api import RenderClient
from ansible.module_utils.render_http import RenderAPIError

from localenv.render_sim import testing

MIGRATE = ("python -c \"import os, psycopg2; c = psycopg2.connect(os.environ['DATABASE_URL']); "
           "c.autocommit = True; c.cursor().execute('CREATE TABLE IF NOT EXISTS migrated (id int)'); "
           "print('migrated: table ready')\"")
FAIL = "echo 'alembic: relation \"widgets\" does not exist' >&2; exit 3"


@pytest.fixture
def sim(pg_cluster):
    with testing.running(pg_cluster, pre_deploy_command=MIGRATE) as world:
        yield world


def api(server, key, **kw):
    kw.setdefault("backoff", 0.01)
    return RenderClient(key, server.base_url, **kw)


def health(url):
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as resp:  # noqa: S310 (loopback)
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def can_login(url):
    try:
        psycopg2.connect(url, connect_timeout=5).close()
        return True
    except psycopg2.OperationalError as exc:
        assert "password authentication failed" in str(exc) or "authentication" in str(exc)
        return False


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# -- auth, shapes, pagination -----------------------------------------------------------------

def test_bearer_auth_401_with_rate_limit_headers(sim):
    server, names, key = sim
    url = f"{server.base_url}/services/{names['service']}"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {key}"}):
        resp = requests.get(url, headers=headers, timeout=10)
        assert resp.status_code == 401
        assert resp.json() == {"message": "unauthorized"}
        assert {"Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset"} <= set(resp.headers)
    with pytest.raises(RenderAPIError, match=r"^Render API key rejected \(HTTP 401\)"):
        api(server, "wrong").get_service(names["service"])


def test_list_wrappers_cursors_and_404(sim):
    server, names, key = sim
    headers = {"Authorization": f"Bearer {key}"}
    first = requests.get(f"{server.base_url}/services", params={"limit": 1}, headers=headers, timeout=10)
    assert first.status_code == 200 and first.headers["Content-Type"] == "application/json; charset=utf-8"
    page = first.json()
    assert len(page) == 1 and set(page[0]) == {"cursor", "service"}
    second = requests.get(f"{server.base_url}/services", params={"limit": 1, "cursor": page[0]["cursor"]},
                          headers=headers, timeout=10).json()
    assert {page[0]["service"]["id"], second[0]["service"]["id"]} == {names["service"], names["worker"]}
    typed = requests.get(f"{server.base_url}/services", params={"type": "background_worker,cron_job"},
                         headers=headers, timeout=10).json()
    assert [w["service"]["id"] for w in typed] == [names["worker"]]
    missing = requests.get(f"{server.base_url}/services/srv-00000000000000000000", headers=headers, timeout=10)
    assert (missing.status_code, missing.json()) == (404, {"message": "not found: srv-00000000000000000000"})
    bad = requests.get(f"{server.base_url}/services", params={"limit": 101}, headers=headers, timeout=10)
    assert bad.status_code == 400 and "limit" in bad.json()["message"]
    assert api(server, key).list_services() and len(api(server, key).list_services()) == 2


def test_env_vars_single_key_and_pagination(sim):
    server, names, key = sim
    client = api(server, key)
    srv = names["service"]
    testing.Control(server, key).rate_limits(mutate=1000)  # Render allows 30 writes a minute
    for i in range(130):
        client.put_env_var(srv, f"K{i:03d}", str(i))
    listed = client.list_env_vars(srv)
    assert len(listed) == 131 and listed[0]["key"] == "DATABASE_URL"
    assert client.get_env_var(srv, "K007") == {"key": "K007", "value": "7"}
    resp = requests.delete(f"{server.base_url}/services/{srv}/env-vars/K007",
                           headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert resp.status_code == 204 and resp.content == b"" and "Content-Type" not in resp.headers
    assert client.get_env_var(srv, "K007") is None
    generated = client.put_env_var(srv, "SECRET", generate=True)
    assert len(generated["value"]) >= 32


# -- postgres credentials: real roles ------------------------------------------------------------

def test_credential_rotation_changes_which_password_works(sim, pg_cluster):
    server, names, key = sim
    client = api(server, key)
    dpg = names["postgres"]
    old = client.get_connection_info(dpg)
    assert can_login(old["externalConnectionString"]) and can_login(old["internalConnectionString"])
    with psycopg2.connect(old["externalConnectionString"]) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE widgets (id int primary key, name text)")
        cur.execute("INSERT INTO widgets VALUES (1, 'old owner made me')")

    resp = requests.post(f"{server.base_url}/postgres/{dpg}/credentials", json={"username": names["user"] + "_v2"},
                         headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert resp.status_code == 202 and resp.content == b""
    creds = {c["username"]: c for c in client.list_credentials(dpg)}
    assert creds[names["user"] + "_v2"]["default"] is True and creds[names["user"]]["default"] is False
    new = client.get_connection_info(dpg)
    assert new["password"] != old["password"] and names["user"] + "_v2" in new["externalConnectionString"]
    assert client.get_postgres(dpg)["databaseUser"] == names["user"] + "_v2"

    # The new user can use the app's tables, and what it creates stays the owner's.
    with psycopg2.connect(new["externalConnectionString"]) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO widgets VALUES (2, 'new user') RETURNING id")
        cur.execute("CREATE TABLE made_by_v2 (id int)")
        cur.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_v2'")
        assert cur.fetchone()[0] == names["user"]
    assert can_login(old["externalConnectionString"])  # both work until the old one is deleted

    with pytest.raises(RenderAPIError, match=r"HTTP 400\): cannot delete .* default user"):
        client.delete_credential(dpg, names["user"] + "_v2")
    client.delete_credential(dpg, names["user"])
    assert not can_login(old["externalConnectionString"])
    assert can_login(new["externalConnectionString"])
    assert [c["username"] for c in client.list_credentials(dpg)] == [names["user"] + "_v2"]

    # A third user; deleting the second (a non-owner role) drops the role itself.
    client.create_credential(dpg, names["user"] + "_v3")
    third = client.get_connection_info(dpg)
    client.delete_credential(dpg, names["user"] + "_v2")
    assert not can_login(new["externalConnectionString"])
    with psycopg2.connect(third["externalConnectionString"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM widgets")
        assert cur.fetchone()[0] == 2
    with psycopg2.connect(pg_cluster.admin_url()) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [names["user"] + "_v2"])
        assert cur.fetchone() is None
    bad = requests.post(f"{server.base_url}/postgres/{dpg}/credentials", json={"username": "Bad-Name"},
                        headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert bad.status_code == 400


def test_asynchronous_credential_creation_can_be_simulated(pg_cluster):
    with testing.running(pg_cluster, credential_delay=0.5) as (server, names, key):
        client = api(server, key)
        dpg = names["postgres"]
        client.create_credential(dpg, names["user"] + "_late")
        assert [c["username"] for c in client.list_credentials(dpg)] == [names["user"]]
        with pytest.raises(RenderAPIError, match="HTTP 400"):  # a second create while pending
            client.create_credential(dpg, names["user"] + "_late")
        assert wait_until(lambda: client.list_credentials(dpg)[-1]["username"] == names["user"] + "_late")
        assert client.get_postgres(dpg)["databaseUser"] == names["user"] + "_late"


# -- deploys -------------------------------------------------------------------------------------

def test_deploy_runs_pre_deploy_and_restarts_with_current_env(sim):
    server, names, key = sim
    client = api(server, key)
    srv, dpg = names["service"], names["postgres"]
    url = client.get_service(srv)["serviceDetails"]["url"]
    assert health(url) == 200

    # Rotate: the running instance keeps the old URL until a deploy restarts it.
    client.create_credential(dpg, names["user"] + "_new")
    client.put_env_var(srv, "DATABASE_URL", client.get_connection_info(dpg)["internalConnectionString"])
    client.delete_credential(dpg, names["user"])
    assert health(url) == 503

    deploy, status = client.create_deploy(srv)
    # As recorded from Render: a 201 body is already running, with explicit nulls.
    assert status == 201 and deploy["status"] == "build_in_progress" and deploy["trigger"] == "api"
    assert deploy["commit"] is None and deploy["finishedAt"] is None and deploy["startedAt"]
    seen = []
    client.wait_for_deploy(srv, deploy["id"], interval=0.01,
                           on_poll=lambda d: seen.append(d["status"]) if d["status"] not in seen[-1:] else None)
    order = ["build_in_progress", "pre_deploy_in_progress", "update_in_progress", "live"]
    assert seen == [s for s in order if s in seen] and seen[-1] == "live", seen  # never backwards
    assert health(url) == 200
    # Every phase ran, in order (polling may miss a short one; the events do not).
    events = [e for e in reversed(client.list_events(srv))
              if (e["details"].get("deployId") == deploy["id"]
                  or e["details"].get("reason", {}).get("newDeploy", {}).get("id") == deploy["id"]
                  or e["type"] == "build_started")]
    assert [e["type"] for e in events][-6:] == ["deploy_started", "build_started", "build_ended",
                                                "pre_deploy_started", "pre_deploy_ended", "deploy_ended"]
    assert events[-2]["details"]["preDeployStatus"] == "succeeded"
    assert events[-1]["details"]["deployStatus"] == "succeeded"
    logs = client.query_logs(names["owner"], [srv], filters={"type": "build"})["logs"]
    assert any("migrated: table ready" in entry["message"] for entry in logs)
    statuses = [d["status"] for d in client.list_deploys(srv)]
    assert statuses == ["live", "deactivated"]


def test_pre_deploy_failure_keeps_the_old_instance_and_reports(pg_cluster):
    with testing.running(pg_cluster, pre_deploy_command=FAIL) as (server, names, key):
        client = api(server, key)
        srv = names["service"]
        pid_before = server.sim.services[srv].process.pid
        deploy, _ = client.create_deploy(srv)
        done = client.wait_for_deploy(srv, deploy["id"], interval=0.02)
        assert done["status"] == "pre_deploy_failed" and done["finishedAt"] >= done["startedAt"]
        event = client.list_events(srv, event_type="pre_deploy_ended")[0]
        assert event["details"]["preDeployStatus"] == "failed"
        assert event["details"]["reason"]["failure"]["nonZeroExit"] == 3
        messages = [e["message"] for e in client.query_logs(names["owner"], [srv])["logs"]]
        assert any('relation "widgets" does not exist' in m for m in messages)
        assert server.sim.services[srv].process.pid == pid_before
        assert health(client.get_service(srv)["serviceDetails"]["url"]) == 200


def test_second_deploy_is_queued_with_202_and_an_empty_body(sim):
    server, names, key = sim
    client = api(server, key)
    srv = names["service"]
    headers = {"Authorization": f"Bearer {key}"}
    first = requests.post(f"{server.base_url}/services/{srv}/deploys", json={}, headers=headers, timeout=10)
    second = requests.post(f"{server.base_url}/services/{srv}/deploys", json={}, headers=headers, timeout=10)
    assert first.status_code == 201 and first.json()["id"].startswith("dep-")
    assert first.json()["status"] == "build_in_progress"  # 201 is never the queued case
    assert second.status_code == 202 and second.content == b"" and "Content-Type" not in second.headers
    queued = client.list_deploys(srv, status="queued", limit=1, max_items=1)
    assert queued and queued[0]["id"] != first.json()["id"]
    # Not started yet: no startedAt, and finishedAt an explicit null as Render sends it.
    assert queued[0]["finishedAt"] is None and "startedAt" not in queued[0]
    order = ["queued", "build_in_progress", "pre_deploy_in_progress", "update_in_progress", "live"]
    seen = []
    client.wait_for_deploy(srv, queued[0]["id"], interval=0.01,
                           on_poll=lambda d: seen.append(d["status"]) if d["status"] not in seen[-1:] else None)
    assert seen[0] == "queued" and seen == [s for s in order if s in seen], seen
    assert client.get_deploy(srv, first.json()["id"])["status"] == "deactivated"


# -- maintenance mode, suspend/resume -----------------------------------------------------------

def test_maintenance_mode_patch_and_503(sim):
    server, names, key = sim
    client = api(server, key)
    srv = names["service"]
    url = client.get_service(srv)["serviceDetails"]["url"]
    service = client.set_maintenance_mode(srv, True, "")
    assert service["serviceDetails"]["maintenanceMode"] == {"enabled": True, "uri": ""}
    assert health(url) == 503
    assert client.list_events(srv, event_type="maintenance_mode_enabled")[0]["details"] == {"enabled": True}
    headers = {"Authorization": f"Bearer {key}"}
    partial = requests.patch(f"{server.base_url}/services/{srv}", headers=headers, timeout=10,
                             json={"serviceDetails": {"maintenanceMode": {"enabled": False}}})
    assert partial.status_code == 400 and "uri" in partial.json()["message"]
    worker = requests.patch(f"{server.base_url}/services/{names['worker']}", headers=headers, timeout=10,
                            json={"serviceDetails": {"maintenanceMode": {"enabled": True, "uri": ""}}})
    assert worker.status_code == 400 and "web services" in worker.json()["message"]
    client.set_maintenance_mode(srv, False, "")
    assert health(url) == 200


def test_suspend_and_resume_stop_and_start_the_process(sim):
    server, names, key = sim
    client = api(server, key)
    srv = names["service"]
    url = client.get_service(srv)["serviceDetails"]["url"]
    resp = requests.post(f"{server.base_url}/services/{srv}/suspend",
                         headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert resp.status_code == 202 and resp.content == b""
    service = client.get_service(srv)
    assert service["suspended"] == "suspended" and service["suspenders"] == ["user"]
    assert health(url) is None
    client.resume_service(srv)
    assert client.get_service(srv)["suspended"] == "not_suspended"
    assert wait_until(lambda: health(url) == 200)


# -- rate limits and faults -----------------------------------------------------------------------

def test_rate_limit_429_with_retry_after_and_headers_everywhere(sim):
    server, names, key = sim
    control = testing.Control(server, key)
    control.rate_limits(get=3)
    headers = {"Authorization": f"Bearer {key}"}
    seen = [requests.get(f"{server.base_url}/services/{names['service']}", headers=headers, timeout=10)
            for _ in range(4)]
    assert [r.status_code for r in seen] == [200, 200, 200, 429]
    assert [r.headers["Ratelimit-Remaining"] for r in seen] == ["2", "1", "0", "0"]
    assert all(r.headers["Ratelimit-Limit"] == "3" for r in seen)
    limited = seen[-1]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["Retry-After"] == limited.headers["Ratelimit-Reset"]
    assert limited.json()["message"] == "rate limit exceeded"
    sleeps = []
    client = RenderClient(key, server.base_url, sleep=sleeps.append, max_attempts=2)
    with pytest.raises(RenderAPIError, match="rate limit"):
        client.get_service(names["service"])
    assert len(sleeps) == 1 and 1 <= sleeps[0] <= 61  # waited as Retry-After said
    control.rate_limits(get=400)
    # Deploys are limited per service (10/min).
    control.rate_limits(service_action=1)
    client = api(server, key, max_attempts=1)
    client.set_maintenance_mode(names["service"], False, "")
    with pytest.raises(RenderAPIError, match="HTTP 429"):
        client.set_maintenance_mode(names["service"], False, "")
    control.rate_limits(service_action=10)


def test_fault_injection_statuses_delays_and_drops(sim):
    server, names, key = sim
    control = testing.Control(server, key)
    op = "GET /services/{serviceId}"
    control.faults(op, [{"status": 503}, {"drop": True}, {"delay": 0.3}])
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{server.base_url}/services/{names['service']}"
    first = requests.get(url, headers=headers, timeout=10)
    assert first.status_code == 503 and first.json() == {"message": "simulated fault"}
    assert "Ratelimit-Remaining" in first.headers
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, headers=headers, timeout=10)
    started = time.monotonic()
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
    assert time.monotonic() - started >= 0.3
    # The client rides through the same faults.
    control.faults(op, [{"status": 500}, {"drop": True}, {"status": 429, "headers": {"Retry-After": "0"}}])
    assert api(server, key).get_service(names["service"])["id"] == names["service"]


def test_ambiguous_failures_never_make_two_deploys_or_credentials(sim):
    server, names, key = sim
    control = testing.Control(server, key)
    client = api(server, key)
    srv, dpg = names["service"], names["postgres"]
    before = len(client.list_deploys(srv))
    control.faults("POST /services/{serviceId}/deploys", [{"apply": True, "drop": True}])
    deploy, _ = client.create_deploy(srv)
    assert len(client.list_deploys(srv)) == before + 1
    client.wait_for_deploy(srv, deploy["id"], interval=0.02)
    # Not applied: a gateway's 502 is watched (for in_flight seconds) and then retried.
    control.faults("POST /services/{serviceId}/deploys", [{"status": 502}])
    started = time.monotonic()
    api(server, key, in_flight=0.5).create_deploy(srv)
    assert len(client.list_deploys(srv)) == before + 2 and time.monotonic() - started >= 0.5
    control.faults("POST /postgres/{postgresId}/credentials", [{"apply": True, "status": 500}])
    result = client.create_credential(dpg, names["user"] + "_x")
    assert result.recovered
    posts = [e for e in control.journal() if e.get("operation") == "POST /postgres/{postgresId}/credentials"]
    assert len(posts) == 1
    assert [c["username"] for c in client.list_credentials(dpg)].count(names["user"] + "_x") == 1


# -- logs --------------------------------------------------------------------------------------------

def test_logs_time_pagination_returns_each_line_once(sim):
    server, names, key = sim
    srv = names["service"]
    for i in range(250):
        server.sim.logs.add(srv, f"line {i:03d}", log_type="app")
    client = api(server, key)
    forward = client.query_logs(names["owner"], [srv], direction="forward", filters={"text": "line *"})
    assert [e["message"] for e in forward["logs"]] == [f"line {i:03d}" for i in range(250)]
    backward = client.query_logs(names["owner"], [srv], filters={"text": "line *"}, max_logs=1000)
    assert [e["message"] for e in backward["logs"]] == [f"line {i:03d}" for i in reversed(range(250))]
    first = requests.get(f"{server.base_url}/logs", headers={"Authorization": f"Bearer {key}"}, timeout=10,
                         params={"ownerId": names["owner"], "resource": srv, "limit": 100, "text": "line *"}).json()
    assert first["hasMore"] is True and len(first["logs"]) == 100
    assert set(first) == {"hasMore", "nextStartTime", "nextEndTime", "logs"}
    missing = requests.get(f"{server.base_url}/logs", headers={"Authorization": f"Bearer {key}"}, timeout=10,
                           params={"resource": srv})
    assert missing.status_code == 400
