"""The post-deploy proof against the Render simulator, over real HTTP: the app_deploy role's
entry points (proof, health, maintenance_check, check_inputs) as an operator's play runs them,
then recover.yml itself: an app still answering in maintenance stops the run before any
database change, a log line "operator does not exist" and a smoke path answering 500 fail it,
the cleanup runs anyway, the run report says where it stopped, and the smoke headers never
appear in the output, even at -vvv, nor in a report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg2
import pytest
import requests
import yaml
from ansible.module_utils.render_api import RenderClient

from localenv.render_sim import testing
from tests.integration.test_recover import LOCAL_PROOF, SERVICE, api, local_proof, recovery_vars
from tests.playbook_runner import ROOT, run_playbook

pytestmark = pytest.mark.ansible

TOKEN = "tok_ProofSecret_7f3c9a51d2"
SMOKE = LOCAL_PROOF  # the local inventory's example, as make demo runs it

ENTRY_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: The entry point under test
      block:
        - name: Run it
          ansible.builtin.include_role:
            name: app_deploy
            tasks_from: "{{ entry }}"
      always:
        - name: Keep what it published
          ansible.builtin.copy:
            content: "{{ app_deploy_result | default({}) | to_json }}"
            dest: "{{ result_file }}"
            mode: "0600"
          check_mode: false
"""


def run_entry(tmp_path, entry: str, server, key: str, *, check=False, verbosity=0, name=None, **more):
    """(rc, output, app_deploy_result) of one entry point; the secrets only in a 0600 vars file."""
    name = name or entry
    playbook, vars_file, result_file = (tmp_path / f"{name}.yml", tmp_path / f"{name}-vars.yml",
                                        tmp_path / f"{name}-result.json")
    playbook.write_text(ENTRY_PLAY)
    variables = {"entry": entry, "result_file": str(result_file), "app_deploy_service_id": more.pop("service"),
                 "render_api_key": key, "render_api_base_url": server.base_url,
                 "app_deploy_health_delay": 0, "app_deploy_health_retries": 2,
                 "app_deploy_maintenance_check_delay": 0, "app_deploy_maintenance_check_retries": 2,
                 "app_deploy_smoke_headers": {"Authorization": f"Bearer {TOKEN}"}, **more}
    vars_file.write_text(yaml.safe_dump(variables))
    vars_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RENDER_", "ANSIBLE_"))}
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
            "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"@{vars_file}", str(playbook)]
    argv += (["--check"] if check else []) + (["-" + "v" * verbosity] if verbosity else [])
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    return proc.returncode, proc.stdout + proc.stderr, result


@pytest.fixture
def world(pg_cluster):
    with testing.running(pg_cluster, env={"APP_API_TOKEN": TOKEN}) as (server, names, key):
        yield server, names, key, testing.Control(server, key)


def app_log(server, key, names) -> list[str]:
    client = RenderClient(key, server.base_url)
    return [e["message"] for e in client.query_logs(names["owner"], [names["service"]], max_logs=500)["logs"]]


def test_the_proof_passes_sends_nothing_in_check_mode_and_never_shows_the_header(world, tmp_path):
    server, names, key, _ = world
    rc, output, result = run_entry(tmp_path, "proof", server, key, service=names["service"], check=True,
                                   name="check", **SMOKE)
    assert rc == 0, output[-3000:]
    assert "would send, in order: smoke 'create a test organization': POST http://127.0.0.1:" in output
    assert "would GET http://127.0.0.1:" in output
    assert not [line for line in app_log(server, key, names) if "/api/" in line]  # nothing reached the app

    rc, output, result = run_entry(tmp_path, "proof", server, key, service=names["service"], verbosity=3, **SMOKE)
    assert rc == 0, output[-3000:]
    assert "<127.0.0.1> EXEC" in output or "ESTABLISH LOCAL CONNECTION" in output  # really -vvv
    assert TOKEN not in output and TOKEN not in json.dumps(result)
    assert result["health"]["ok"] and result["frontend"]["ok"] and result["logs"]["ok"]
    smoke = result["smoke"]
    assert smoke["ok"] and [(r["phase"], r["status"]) for r in smoke["requests"]] == [
        ("smoke", 201), ("smoke", 201), ("smoke", 201), ("smoke", 200),
        ("cleanup", 204), ("cleanup", 204), ("cleanup", 204)]
    assert result["logs"]["lines_checked"] > 0
    # The cleanup removed what the smoke requests made: the app's API says so.
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for request in smoke["requests"][4:]:
        assert requests.get(request["url"], headers=headers, timeout=10).status_code == 404


def test_a_smoke_path_answering_500_fails_naming_it_and_the_cleanup_still_runs(world, tmp_path):
    server, names, key, control = world
    control.app_faults(names["service"], [{"path": "/api/deals", "method": "POST", "status": 500,
                                           "body": {"error": "internal error"}}])
    rc, output, result = run_entry(tmp_path, "proof", server, key, service=names["service"], verbosity=3, **SMOKE)
    assert rc == 2, output[-3000:]
    assert "smoke request 'create a deal for it' (POST http://127.0.0.1:" in output
    assert "/api/deals) answered 500, expected 201" in output
    assert TOKEN not in output
    smoke = {r["name"]: r for r in result["smoke"]["requests"]}
    assert result["smoke"]["failed_request"] == "create a deal for it"
    assert smoke["create a document on the deal"]["skipped"] and smoke["delete the test deal"]["skipped"]
    gone = smoke["delete the test organization"]
    assert gone["ok"] and gone["status"] == 204
    assert requests.get(gone["url"], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).status_code == 404
    assert "logs" not in result  # the run stopped at the smoke requests


def test_a_log_line_and_a_failing_frontend_fail_the_proof_naming_them(world, tmp_path):
    server, names, key, control = world
    control.log(names["service"], "ERROR: operator does not exist: character varying = uuid at character 52",
                f"connecting to postgresql://app:pw-in-log-9@db/app with Bearer {TOKEN}")
    rc, output, result = run_entry(tmp_path, "health", server, key, service=names["service"], name="logs")
    assert rc == 2, output[-3000:]
    assert "operator does not exist: character varying = uuid" in output
    assert "matches '(?i:operator does not exist)'" in output
    assert result["logs"]["matched"] == 1 and result["logs"]["ok"] is False
    assert TOKEN not in output and "pw-in-log-9" not in output

    control.app_faults(names["service"], [{"path": "/", "method": "GET", "status": 502}])
    rc, output, result = run_entry(tmp_path, "health", server, key, service=names["service"], name="frontend",
                                   app_deploy_frontend_url="/", app_deploy_log_fail_patterns=["never-matches"])
    assert rc == 2, output[-3000:]
    assert "/ answered 502, expected 200 (after 2 attempts" in output
    assert result["frontend"]["status"] == 502 and result["health"]["ok"]


def test_maintenance_is_confirmed_from_outside_or_the_check_fails(world, tmp_path):
    server, names, key, control = world
    RenderClient(key, server.base_url).set_maintenance_mode(names["service"], True, "")
    rc, output, result = run_entry(tmp_path, "maintenance_check", server, key, service=names["service"])
    assert rc == 0, output[-3000:]
    assert result["maintenance_check"]["status"] == 503 and "maintenance mode confirmed from outside" in output

    # A cache in front of Render's edge still serves the health path.
    control.app_faults(names["service"], [{"path": "/health", "status": 200, "during_maintenance": True}])
    rc, output, result = run_entry(tmp_path, "maintenance_check", server, key, service=names["service"],
                                   name="still-serving")
    assert rc == 2, output[-3000:]
    assert "maintenance mode is on at Render, but http://127.0.0.1:" in output
    assert "/health answered 200, expected 503 (after 2 attempts" in output
    assert "nothing was changed in the database" in output


def test_bad_proof_inputs_are_refused_before_anything_is_sent(world, tmp_path):
    server, names, key, _ = world
    bad = {"app_deploy_smoke_requests": [{"name": "read", "url": "/api/deals/${deal_id}"}],
           "app_deploy_smoke_headers": {"Authorization": "Bearer CHANGE_ME_in_vault"}}
    rc, output, _ = run_entry(tmp_path, "check_inputs", server, key, service=names["service"], **bad)
    assert rc == 2, output[-3000:]
    assert "the smoke requests cannot run, nothing was sent" in output
    assert "header Authorization still holds a CHANGE_ME placeholder" in output
    assert "CHANGE_ME_in_vault" not in output
    rc, output, _ = run_entry(tmp_path, "check_inputs", server, key, service=names["service"], name="pattern",
                              app_deploy_log_fail_patterns=["(unclosed"])
    assert rc == 2 and "log pattern '(unclosed' is not a regular expression" in output


# -- recover.yml ------------------------------------------------------------------------------------

def _control(environment) -> testing.Control:
    return testing.Control(environment["render_api_url"], environment["render_api_key"])


def _report(tmp_path) -> dict:
    paths = sorted((tmp_path / "reports").glob("*/*/run-report.json"), key=os.path.getmtime)
    return json.loads(paths[-1].read_text())


def _alembic(environment) -> list:
    with psycopg2.connect(environment["recovery_database_url"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT version_num FROM alembic_version")
        return cur.fetchall()


def test_recover_stops_at_the_proof_and_the_report_says_where(environment, tmp_path):
    """One environment, three runs of recover.yml: (1) the app still answers 200 in maintenance:
    stopped before any database change; (2) the smoke requests make the app log "operator does
    not exist": stopped at the logs; (3) a smoke path answers 500: stopped at the smoke step, at
    -vvv, with the cleanup run and the header nowhere."""
    token = environment["app_api_token"]
    extra = recovery_vars(environment, tmp_path) | local_proof(environment) | {"credential_rotation_leaked_users": []}
    control = _control(environment)

    control.app_faults(SERVICE, [{"path": "/health", "status": 200, "during_maintenance": True}])
    first = run_playbook("playbooks/recover.yml", extra)
    assert first.rc != 0
    report = _report(tmp_path)
    assert report["stopped_at"] == "maintenance_on", first.output[-4000:]
    assert "answered 200, expected 503" in report["steps"][1]["detail"]
    assert report["state"]["maintenance_mode"] == "ON" and not report["state"]["database_changed"]
    assert _alembic(environment) == [("f867c7e3d51c",)]  # nothing was backed up or converted
    assert "failed" not in [s["status"] for s in report["steps"][2:]] and report["steps"][2]["status"] == "not reached"

    control.app_faults(SERVICE, [{"path": "/api/deals", "method": "POST",
                                  "log": "sqlalchemy.exc.ProgrammingError: (psycopg2.errors.UndefinedFunction) "
                                         "operator does not exist: character varying = uuid"}])
    second = run_playbook("playbooks/recover.yml", extra)
    assert second.rc != 0
    report = _report(tmp_path)
    assert report["stopped_at"] == "logs", second.output[-4000:]
    steps = {s["id"]: s for s in report["steps"]}
    assert steps["smoke"]["status"] == "done" and steps["deploy"]["status"] == "done"
    assert "operator does not exist: character varying = uuid" in steps["logs"]["detail"]
    assert report["proof"]["maintenance_check"]["status"] == 503
    assert report["state"]["maintenance_mode"] == "off"  # turned off before the proof, as for health
    assert _alembic(environment) == [("b354d12d1e7d",)]

    control.app_faults(SERVICE, [{"path": "/api/deals", "method": "POST", "status": 500}])
    third = run_playbook("playbooks/recover.yml", extra, verbosity=3)
    assert third.rc != 0
    report = _report(tmp_path)
    assert report["stopped_at"] == "smoke", third.output[-4000:]
    assert "smoke request 'create a deal for it'" in report["steps"][[s["id"] for s in report["steps"]].index(
        "smoke")]["detail"]
    assert report["failure"]["task"] == "Stop when a smoke or cleanup request failed"
    assert report["proof"]["smoke"]["failed_request"] == "create a deal for it"
    cleanup = {r["name"]: r for r in report["proof"]["smoke"]["requests"] if r["phase"] == "cleanup"}
    assert cleanup["delete the test organization"]["ok"] and cleanup["delete the test deal"]["skipped"]
    assert report["state"]["maintenance_mode"] == "off"
    assert "failed a smoke request" in report["next_action"][0]
    assert api(environment, f"/services/{SERVICE}")["serviceDetails"]["maintenanceMode"]["enabled"] is False
    markdown = (tmp_path / "reports").glob("*/*/run-report.md")
    for text in (third.output, *[p.read_text() for p in markdown], json.dumps(report)):
        assert token not in text and environment["render_api_key"] not in text
