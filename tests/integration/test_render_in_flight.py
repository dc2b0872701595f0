"""A deploy request Render answers only after the client's read timeout (the simulator's
``{"delay": ...}`` fault sleeps, then carries the request out): one deploy, never two, and
the deploy reported is the one live. The read timeout is short here (2 s, the delay 10% longer,
as 33 s is to Render's default 30 s), so the test takes seconds, not minutes. And unless_live:
a deploy in progress is waited for, never doubled."""

from __future__ import annotations

import re
import time

import pytest
from ansible.module_utils.render_api import RenderClient

from localenv.render_sim import testing
from tests.integration.test_render_modules import (
    MIGRATE,
    play_process,
    play_results,
    run_play,
)
from tests.integration.test_render_roles import role_vars, run_role

pytestmark = pytest.mark.ansible

CREATE_DEPLOY = "POST /services/{serviceId}/deploys"
TIMEOUT = 2.0
LATE = 2.2  # answered 10% after the read timeout: the deploy exists by then

DEPLOY_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: deploy
      render_deploy:
        service: "{{ srv }}"
        trigger: always
        timeout: "{{ timeout }}"
        in_flight_wait: "{{ in_flight_wait | default(omit) }}"
        poll_interval: 0.2
        wait_timeout: 120
      register: deploy
"""


@pytest.fixture
def world(pg_cluster):
    with testing.running(pg_cluster, pre_deploy_command=MIGRATE) as (server, names, key):
        yield server, names, key


def deploys_of(server, names):
    return [dict(d) for d in server.sim.services[names["service"]].deploys]


def test_a_late_answer_to_a_deploy_request_makes_one_deploy_and_reports_it(world, tmp_path):
    server, names, key = world
    srv = names["service"]
    before = {d["id"] for d in deploys_of(server, names)}
    testing.Control(server, key).faults(CREATE_DEPLOY, [{"delay": LATE}])

    results, _ = run_play(tmp_path, DEPLOY_PLAY, {"srv": srv, "timeout": TIMEOUT}, server=server, key=key)

    made = [d for d in deploys_of(server, names) if d["id"] not in before]
    assert len(made) == 1, [(d["id"], d["status"]) for d in made]
    deploy = results["deploy"]
    assert deploy["deploy"]["id"] == made[0]["id"] and deploy["status"] == "live"
    assert made[0]["status"] == "live" and "superseded" not in deploy


def test_a_duplicate_that_lands_after_the_watch_is_reported_as_the_live_one(pg_cluster, tmp_path):
    """Answered later than even the watch: the retry makes a second deploy, the late first
    one then supersedes it, and the task reports the one that is live, naming the other.
    Every pre-deploy waits for `go`, touched once both deploys exist: no race with the clock."""
    go = tmp_path / "go"
    command = f"while [ ! -f {go} ]; do sleep 0.05; done; {MIGRATE}"
    with testing.running(pg_cluster, pre_deploy_command=command) as (server, names, key):
        try:
            before = {d["id"] for d in deploys_of(server, names)}
            testing.Control(server, key).faults(CREATE_DEPLOY, [{"delay": 4.0}])
            proc = play_process(tmp_path, DEPLOY_PLAY, {"srv": names["service"], "timeout": 1, "in_flight_wait": 1},
                                server=server, key=key)
            deadline = time.monotonic() + 60
            while len([d for d in deploys_of(server, names) if d["id"] not in before]) < 2:
                assert proc.poll() is None and time.monotonic() < deadline, "no second deploy"
                time.sleep(0.1)
        finally:
            go.touch()
        results, _ = play_results(proc)
        made = {d["id"]: d["status"] for d in deploys_of(server, names) if d["id"] not in before}
    live = [dep for dep, status in made.items() if status == "live"]
    assert len(made) == 2 and len(live) == 1, made
    deploy = results["deploy"]
    assert (deploy["deploy"]["id"], deploy["status"]) == (live[0], "live")
    assert deploy["superseded"]["by"] == live[0] and made[deploy["superseded"]["deploy_id"]] == "deactivated"


def test_the_role_takes_a_read_timeout_and_reports_the_live_deploy(world, tmp_path):
    server, names, key = world
    srv = names["service"]
    before = {d["id"] for d in deploys_of(server, names)}
    testing.Control(server, key).faults(CREATE_DEPLOY, [{"delay": LATE}])

    rc, output = run_role(tmp_path, "app_deploy", role_vars(
        "app_deploy", server, srv, key, app_deploy_trigger="always", app_deploy_api_timeout=TIMEOUT,
        app_deploy_poll_interval=1, app_deploy_health_check=False))

    assert rc == 0, output[-3000:]
    made = [d for d in deploys_of(server, names) if d["id"] not in before]
    assert len(made) == 1 and made[0]["status"] == "live"
    assert re.search(rf"deploy {made[0]['id']} is live\b", output), output[-2000:]
    assert key not in output


# -- unless_live: a deploy in progress is waited for, never doubled -----------------------------------

UNLESS_LIVE_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: deploy unless live
      render_deploy:
        service: "{{ srv }}"
        trigger: unless_live
        poll_interval: 0.1
        wait_timeout: 120
      register: deploy
"""


def test_unless_live_waits_for_the_deploy_in_progress_then_decides(pg_cluster, tmp_path):
    go, mark = tmp_path / "go", tmp_path / "mark"
    # Each deploy's pre-deploy waits for `go`; the first attempt fails, later ones pass.
    command = (f"while [ ! -f {go} ]; do sleep 0.05; done; "
               f"if [ -f {mark} ]; then echo migrated; else touch {mark}; echo 'first attempt fails' >&2; exit 1; fi")
    with testing.running(pg_cluster, pre_deploy_command=command) as (server, names, key):
        srv = names["service"]
        control = testing.Control(server, key)
        client = RenderClient(key, server.base_url)

        def run_while(deploy_id, name):
            """The module, started while ``deploy_id`` is in progress; `go` once it polls it."""
            control.clear_journal()
            proc = play_process(tmp_path, UNLESS_LIVE_PLAY, {"srv": srv}, server=server, key=key, name=name)
            try:
                deadline = time.monotonic() + 120
                while not any(e["path"].endswith(f"/deploys/{deploy_id}") for e in control.journal()):
                    assert proc.poll() is None and time.monotonic() < deadline, "the module never polled it"
                    time.sleep(0.1)
                assert client.get_deploy(srv, deploy_id)["status"] == "pre_deploy_in_progress"
            finally:
                go.touch()
            results, _ = play_results(proc)
            posts = [e for e in control.journal() if e.get("operation") == "POST /services/{serviceId}/deploys"]
            return results["deploy unless live"], posts

        try:
            # The deploy in progress fails: then, and only then, one new deploy.
            first, _ = client.create_deploy(srv)
            result, posts = run_while(first["id"], "after-failure")
            assert client.get_deploy(srv, first["id"])["status"] == "pre_deploy_failed"
            assert result["changed"] is True and len(posts) == 1
            assert result["deploy"]["id"] != first["id"] and result["status"] == "live"

            # The deploy in progress goes live: nothing to do, and no second deploy.
            go.unlink()
            second, _ = client.create_deploy(srv)
            result, posts = run_while(second["id"], "after-live")
            assert result["changed"] is False and posts == []
            assert (result["deploy"]["id"], result["status"]) == (second["id"], "live")
            assert [d["status"] for d in client.list_deploys(srv)][:3] == ["live", "deactivated", "pre_deploy_failed"]
        finally:
            go.touch()  # never leave a pre-deploy command waiting
