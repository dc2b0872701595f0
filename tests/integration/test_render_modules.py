"""The render_* modules run by ansible-playbook against the simulator: check mode sends no
mutating request, a real run converges, a second run reports changed=0, secrets stay out of
the output, every request of a run validates against Render's spec, a failed deploy fails the
task with the pre-deploy event and logs. (The roles over them: test_render_roles.py; a deploy in
progress or in flight: test_render_in_flight.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from localenv.render_sim import testing

pytestmark = pytest.mark.ansible

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIGRATE = ("python -c \"import os, psycopg2; c = psycopg2.connect(os.environ['DATABASE_URL']); "
           "c.autocommit = True; c.cursor().execute('CREATE TABLE IF NOT EXISTS migrated (id int)')\"")
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}

ROTATION_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: maintenance mode on
      render_service:
        service: "{{ srv }}"
        maintenance_mode: true
      register: maintenance

    - name: a feature flag
      render_env_var:
        service: "{{ srv }}"
        key: FEATURE_FLAG
        value: "{{ flag_value }}"
      register: flag

    - name: a variable that must go
      render_env_var:
        service: "{{ srv }}"
        key: OLD_VAR
        state: absent
      register: old_var

    - name: a new database user, now the default
      render_postgres:
        postgres: "{{ dpg }}"
        state: present
        username: "{{ new_user }}"
        connection_info: true
      no_log: true
      register: credential

    - name: DATABASE_URL to the new user
      render_env_var:
        service: "{{ srv }}"
        key: DATABASE_URL
        value: "{{ credential.connection_info.internalConnectionString | default('postgresql://check-mode') }}"
      register: database_url

    - name: deploy when the environment changed
      render_deploy:
        service: "{{ srv }}"
        poll_interval: 0.1
        wait_timeout: 60
      when: flag is changed or database_url is changed
      register: deploy

    - name: the old user goes
      render_postgres:
        postgres: "{{ dpg }}"
        state: absent
        username: "{{ old_user }}"
      register: old_user_gone

    - name: suspend the worker
      render_service:
        service: "{{ worker }}"
        suspended: true
      register: worker_suspended

    - name: recent logs
      render_logs:
        resources: ["{{ srv }}"]
        limit: 20
      register: logs
"""

FAILING_DEPLOY_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: a deploy whose pre-deploy command fails
      render_deploy:
        service: "{{ srv }}"
        poll_interval: 0.1
        wait_timeout: 60
      register: deploy
      ignore_errors: true

    - name: maintenance mode on a worker is refused
      render_service:
        service: "{{ worker }}"
        maintenance_mode: true
      register: worker_maintenance
      ignore_errors: true

    - name: a missing service
      render_service:
        service: srv-00000000000000000000
      register: missing
      ignore_errors: true
"""


def play_process(tmp_path, play: str, extra: dict, *, server, key, check=False, name="play"):
    """ansible-playbook with the JSON callback, started in the background."""
    playbook = tmp_path / f"{name}.yml"
    playbook.write_text(play)
    extra_file = tmp_path / f"{name}-vars.yml"
    extra_file.write_text(yaml.safe_dump(extra))
    env = dict(os.environ, RENDER_API_KEY=key, RENDER_API_BASE_URL=server.base_url,
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
            "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"@{extra_file}",
            str(playbook)]
    if check:
        argv += ["--check", "--diff"]
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def play_results(proc):
    """(per-task results by name, raw output) of a play_process run that must succeed."""
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout[-4000:] + stderr[-4000:]
    report = json.loads(stdout)
    results = {}
    for task in report["plays"][0]["tasks"]:
        results[task["task"]["name"]] = task["hosts"]["localhost"]
    return results, stdout + stderr


def run_play(tmp_path, play: str, extra: dict, *, server, key, check=False, name="play"):
    """ansible-playbook with the JSON callback; returns (per-task results by name, raw stdout)."""
    return play_results(play_process(tmp_path, play, extra, server=server, key=key, check=check, name=name))


@pytest.fixture
def world(pg_cluster):
    with testing.running(pg_cluster, pre_deploy_command=MIGRATE,
                         env={"OLD_VAR": "legacy"}) as (server, names, key):
        yield server, names, key


def test_check_mode_then_apply_then_nothing_to_do(world, tmp_path):
    server, names, key = world
    control = testing.Control(server, key)
    flag = "flag-value-7f3c"
    extra = {"srv": names["service"], "worker": names["worker"], "dpg": names["postgres"],
             "new_user": names["user"] + "_v2", "old_user": names["user"], "flag_value": flag}

    # 1. Check mode: everything would change, nothing is sent that changes anything.
    control.clear_journal()
    check, output = run_play(tmp_path, ROTATION_PLAY, extra, server=server, key=key, check=True, name="check")
    assert {name for name, r in check.items() if r.get("changed")} == {
        "maintenance mode on", "a feature flag", "a variable that must go", "a new database user, now the default",
        "DATABASE_URL to the new user", "deploy when the environment changed", "the old user goes",
        "suspend the worker"}
    assert [e["method"] + " " + e["path"] for e in control.journal() if e["method"] in MUTATING] == []
    sim = server.sim
    assert sim.services[names["service"]].maintenance["enabled"] is False
    assert [c["username"] for c in sim.postgres[names["postgres"]].credentials] == [names["user"]]
    assert key not in output and flag not in output
    diff = check["a feature flag"]["diff"]
    assert (diff["before"], diff["after"]) == ("", "FEATURE_FLAG=********\n")
    assert check["DATABASE_URL to the new user"]["diff"]["after"] == "DATABASE_URL=******** (new value)\n"
    assert check["maintenance mode on"]["diff"]["after"]["maintenance_mode"] is True

    # 2. For real.
    applied, output = run_play(tmp_path, ROTATION_PLAY, extra, server=server, key=key, name="apply")
    assert all(applied[name]["changed"] for name in check if check[name].get("changed")), applied
    assert applied["deploy when the environment changed"]["status"] == "live"
    assert applied["recent logs"]["lines"]
    assert applied["maintenance mode on"]["maintenance_mode"] == {"enabled": True, "uri": ""}
    service = sim.services[names["service"]]
    assert service.maintenance["enabled"] is True and "OLD_VAR" not in service.env
    assert service.env["FEATURE_FLAG"] == flag
    assert names["user"] + "_v2" in service.env["DATABASE_URL"]
    assert [c["username"] for c in sim.postgres[names["postgres"]].credentials] == [names["user"] + "_v2"]
    assert sim.services[names["worker"]].suspended
    assert key not in output and flag not in output
    password = sim.postgres[names["postgres"]].default["password"]
    assert password not in output  # the task that returned it has no_log

    # 3. Again: nothing to do.
    control.clear_journal()
    again, output = run_play(tmp_path, ROTATION_PLAY, extra, server=server, key=key, name="again")
    assert {name for name, r in again.items() if r.get("changed")} == set()
    assert again["deploy when the environment changed"].get("skipped") is True
    assert [e["method"] for e in control.journal() if e["method"] in MUTATING] == []


def test_module_requests_conform_to_renders_spec(world, tmp_path):
    """Every request of a full module run, the mutating ones included, and every answer
    validate against Render's OpenAPI spec."""
    if not os.path.exists(testing.SPEC_PATH):
        pytest.skip(f"Render's OpenAPI spec is not at {testing.SPEC_PATH}: the modules' requests cannot be "
                    "validated without the shared/ reference material beside the project")
    openapi = testing.load_openapi()[0]
    server, names, key = world
    control = testing.Control(server, key)
    extra = {"srv": names["service"], "worker": names["worker"], "dpg": names["postgres"],
             "new_user": names["user"] + "_v2", "old_user": names["user"], "flag_value": "on"}
    control.clear_journal()
    run_play(tmp_path, ROTATION_PLAY, extra, server=server, key=key, name="conform")
    journal = control.journal()
    operations = {e.get("operation") for e in journal}
    assert {"PATCH /services/{serviceId}", "PUT /services/{serviceId}/env-vars/{envVarKey}",
            "DELETE /services/{serviceId}/env-vars/{envVarKey}", "POST /services/{serviceId}/deploys",
            "POST /postgres/{postgresId}/credentials", "DELETE /postgres/{postgresId}/credentials/{username}",
            "POST /services/{serviceId}/suspend"} <= operations
    assert testing.journal_problems(openapi, journal) == []


def test_failed_deploy_fails_with_pre_deploy_event_and_logs(pg_cluster, tmp_path):
    failing = "echo 'alembic.util.exc.CommandError: Can not locate revision abc123' >&2; exit 2"
    with testing.running(pg_cluster, pre_deploy_command=failing) as (server, names, key):
        results, _ = run_play(tmp_path, FAILING_DEPLOY_PLAY, {"srv": names["service"], "worker": names["worker"]},
                              server=server, key=key, name="failing")
    deploy = results["a deploy whose pre-deploy command fails"]
    assert deploy["failed"] is True and deploy["status"] == "pre_deploy_failed"
    assert "ended pre_deploy_failed (pre-deploy command exited 2)" in deploy["msg"]
    assert "Can not locate revision abc123" in deploy["msg"]
    event = deploy["failure"]["events"]["pre_deploy_ended"]
    assert event["details"]["deployId"] == deploy["deploy"]["id"]
    assert event["details"]["preDeployStatus"] == "failed"
    assert any("Can not locate revision" in line for line in deploy["failure"]["logs"])
    refused = results["maintenance mode on a worker is refused"]
    assert refused["failed"] and "maintenance mode exists only for web services" in refused["msg"]
    missing = results["a missing service"]
    assert missing["failed"] and missing["msg"].startswith("service srv-00000000000000000000 not found (HTTP 404)")


EXPORT_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: export
      render_postgres_export:
        postgres: "{{ postgres }}"
        max_age_minutes: 60
"""


def test_render_export_check_mode_then_one_export_then_nothing_to_do(world, tmp_path):
    server, names, key = world
    extra = {"postgres": names["postgres"]}
    checked, _ = run_play(tmp_path, EXPORT_PLAY, extra, server=server, key=key, check=True, name="export-check")
    assert checked["export"]["changed"] is True and checked["export"]["exports"] == []
    made, output = run_play(tmp_path, EXPORT_PLAY, extra, server=server, key=key, name="export")
    assert made["export"]["changed"] is True
    assert made["export"]["newest"]["id"].startswith("exp-")
    again, _ = run_play(tmp_path, EXPORT_PLAY, extra, server=server, key=key, name="export-again")
    assert again["export"]["changed"] is False and len(again["export"]["exports"]) == 1
    assert key not in output

