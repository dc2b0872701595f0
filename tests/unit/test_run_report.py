"""The run report, from the public results the roles publish, without a server: every step
status, where a run stopped and what it left, the next action, and that no secret ever reaches
a report. The verification report: test_verify_report.py."""

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils.run_report import STEP_IDS, assemble_run_report
from ansible.module_utils.run_report_common import CHECKED, DONE, FAILED, NOT_REACHED, SKIPPED
from ansible.module_utils.run_report_markdown import render_run_markdown

from tests.unit.report_commands import run_report_commands

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSWORD = "s3cr3t-Pa55word"
URL = f"postgresql://app_owner:{PASSWORD}@db.example:5432/appdb?sslmode=require"
API_KEY = "rnd_ApiKeyForTests0123456789"
SECRETS = [URL, PASSWORD, API_KEY]
RUN_ID = "20261124T014249Z"
BACKUP = "/srv/backups/production/20261124T014249Z"


def fk(schema, table, name):
    return {"schema": schema, "table": table, "name": name}


FKS = [fk("public", "orders", "orders_user_id_fkey"), fk("public", "items", "items_order_id_fkey")]


def findings(*, needed=True, stored=("f867c7e3d51c",), true="ba1a5bcdb110", head="b354d12d1e7d", fks=FKS):
    return {
        "conversion_needed": needed,
        "expected_key_type": "character varying(36)",
        "columns_to_convert": [{"qualified": "public.users.id"}, {"qualified": "public.orders.user_id"}] if needed
        else [],
        "foreign_keys": {"count": len(fks), "list": list(fks)},
        "alembic": {"stored": list(stored), "true": true, "head": head, "matches": list(stored) == [true],
                    "pending": ["c2d3e4f5a6b7", "b354d12d1e7d"] if true != head else [], "contradictions": []},
        "database": {"name": "appdb", "user": "app_owner", "host": "db.example"},
    }


def proof(**override):
    """What app_deploy's post-deploy proof publishes in app_deploy_result when everything passed."""
    evidence = {
        "health": {"status": 200, "ok": True, "url": "https://app.example/health",
                   "msg": "https://app.example/health answered 200"},
        "frontend": {"ok": True, "skipped": True, "msg": "no frontend URL configured (app_deploy_frontend_url)"},
        "smoke": {"ok": True, "failed_request": None, "cleanup_failed": [],
                  "requests": [{"name": "create organization", "phase": "smoke", "method": "POST",
                                "url": "https://app.example/api/organizations", "expected": [201], "status": 201,
                                "ok": True, "skipped": False, "msg": "ok"},
                               {"name": "delete organization", "phase": "cleanup", "method": "DELETE",
                                "url": "https://app.example/api/organizations/o-1", "expected": [204],
                                "status": 204, "ok": True, "skipped": False, "msg": "ok"}],
                  "msg": "1 smoke request answered as expected; cleanup: 1 of 1 answered as expected"},
        "logs": {"ok": True, "lines_checked": 9, "complete": True, "matched": 0, "hits": [],
                 "start": "2026-11-24T01:44:00.000000Z",
                 "msg": "9 log lines of srv-x since 2026-11-24T01:44:00.000000Z: none matches a failure pattern"},
    }
    evidence.update(override)
    return evidence


PROOF = ("health", "frontend", "smoke", "logs")


def maintenance(enabled):
    return {"changed": True, "maintenance_mode": {"enabled": enabled, "uri": ""}, "service": {"id": "srv-x"}}


def full_run(**override):
    """Everything a successful recovery leaves."""
    evidence = {
        "findings": findings(),
        "render": True,
        "maintenance": maintenance(False),
        "backup": {"path": BACKUP, "level": "restore", "finished": True,
                   "manifest": {"manifest_checksum": "ab" * 32, "finished_at": "2026-11-24T01:43:00Z",
                                "total_bytes": 123456, "rows": 3161, "tables": 50},
                   "gate_path": BACKUP},
        "convert_plan": {"changed": False, "plan": {"columns": ["public.users.id", "public.orders.user_id"]},
                         "fk_count_before": 2},
        "convert": {"changed": True, "finished": True, "failed": False, "failed_when_result": False,
                    "columns_converted": ["public.users.id", "public.orders.user_id"],
                    "tables_rewritten": ["public.users", "public.orders"], "fk_count_before": 2,
                    "fk_count_after": 2, "timings": {"exclusive_lock": 0.448, "alter": 0.3}, "post_commit_errors": [],
                    "invocation": {"module_args": {"database_url": URL}}},
        "alembic": {"changed": True, "stored": ["f867c7e3d51c"], "revision": "ba1a5bcdb110",
                    "pending": ["c2d3e4f5a6b7", "b354d12d1e7d"]},
        "deploy": {"changed": True, "deploy": {"id": "dep-123", "status": "live", "commit": {"id": "abc1234"},
                                               "createdAt": "2026-11-24T01:44:00Z"}},
        **proof(),
    }
    evidence.update(override)
    return evidence


def run_report(evidence, inventory="-i inventories/production", **kwargs):
    defaults = {"environment": "production", "host": "production", "run_id": RUN_ID, "started_at": None,
                "ended_at": "2026-11-24T01:45:00Z", "manifest_sha256": "cd" * 32, "secrets": SECRETS}
    kwargs = defaults | kwargs
    return assemble_run_report(evidence, commands=run_report_commands(inventory, kwargs["environment"]), **kwargs)


def statuses(report):
    return {s["id"]: s["status"] for s in report["steps"]}


def assert_no_secret(*texts):
    for text in texts:
        blob = text if isinstance(text, str) else json.dumps(text)
        for secret in SECRETS:
            assert secret not in blob


# ----------------------------------------------------------------------------- run report

def test_a_successful_recovery_reports_every_step_done_with_its_figures():
    report = run_report(full_run(rotation={"status": "rotated", "new_user": "app_new", "deleted_users": ["app"]}))
    assert report["outcome"] == "succeeded" and report["stopped_at"] is None
    assert set(statuses(report).values()) == {DONE}
    fig = report["figures"]
    assert fig["foreign_keys"] == {"at_investigation": 2, "before": 2, "after": 2}
    assert (fig["columns_converted"], fig["tables_rewritten"], fig["exclusive_lock_seconds"]) == (2, 2, 0.448)
    assert fig["backup"]["path"] == BACKUP and fig["backup"]["verified_level"] == "restore"
    assert fig["backup"]["manifest_sha256"] == "cd" * 32
    assert fig["alembic"] | {} == {"stored": ["f867c7e3d51c"], "true": "ba1a5bcdb110", "head": "b354d12d1e7d",
                                   "set_to": "ba1a5bcdb110", "pending": ["c2d3e4f5a6b7", "b354d12d1e7d"]}
    assert fig["deploy"]["id"] == "dep-123" and fig["deploy"]["status"] == "live"
    assert fig["health"] == {"status": 200, "url": "https://app.example/health", "log_lines_checked": 9}
    assert report["state"]["maintenance_mode"] == "off" and report["state"]["database_changed"]
    assert report["started_at"] == "2026-11-24T01:42:49Z" and report["duration_seconds"] == 131
    assert any("playbooks/verify.yml -i inventories/production" in line for line in report["next_action"])
    markdown = render_run_markdown(report)
    for text in ("**Outcome: succeeded**", "| Convert the keys (one transaction) | done |", "after 2",
                 "exclusive lock held: 0.448 s", "cd" * 32, "dep-123 live", "`f867c7e3d51c` -> true `ba1a5bcdb110`"):
        assert text in markdown, text


def test_an_online_conversion_skips_maintenance_saying_why_and_still_succeeds():
    online_plan = {"changed": False, "plan": {"columns": ["public.users.id"], "mode": "online"}, "fk_count_before": 2}
    report = run_report(full_run(convert_plan=online_plan,
                                 maintenance={"changed": False, "maintenance_mode": {"enabled": False}}))
    assert report["outcome"] == "succeeded"
    step = next(s for s in report["steps"] if s["id"] == "maintenance_on")
    assert step["status"] == SKIPPED and "online conversion (convert_keys_mode: online)" in step["detail"]
    assert set(statuses(report).values()) == {DONE, SKIPPED}
    # Offline, the same evidence says maintenance was on (the backup came after it).
    offline = run_report(full_run(maintenance={"changed": False, "maintenance_mode": {"enabled": False}}))
    assert next(s for s in offline["steps"] if s["id"] == "maintenance_on")["status"] == DONE


def test_nothing_to_recover_skips_the_recovery_steps():
    evidence = {"findings": findings(needed=False, stored=("b354d12d1e7d",), true="b354d12d1e7d"),
                "render": True, "maintenance": {"changed": False, "maintenance_mode": {"enabled": False}},
                **proof(smoke={"ok": True, "skipped": True, "requests": [], "msg": "no smoke requests configured"})}
    report = run_report(evidence)
    assert report["outcome"] == "succeeded"
    assert statuses(report) == {"investigate": DONE, "maintenance_on": SKIPPED, "backup": SKIPPED,
                                "convert": SKIPPED, "alembic_reset": SKIPPED, "deploy": SKIPPED,
                                "maintenance_off": DONE, "health": DONE, "smoke": SKIPPED, "logs": DONE,
                                "rotation": SKIPPED}
    assert not report["state"]["database_changed"]
    assert report["next_action"][0].startswith("Nothing to do")


def test_without_render_its_steps_are_skipped_and_the_operator_deploys():
    evidence = full_run(render=False)
    for key in ("maintenance", "deploy", *PROOF):
        evidence.pop(key)
    report = run_report(evidence, environment="staging")
    assert report["outcome"] == "succeeded"
    assert [s["id"] for s in report["steps"] if s["status"] == SKIPPED] == [
        "maintenance_on", "deploy", "maintenance_off", "health", "smoke", "logs", "rotation"]
    assert report["state"]["maintenance_mode"] == "not managed by this run (recovery_render: false)"
    assert any("Deploy the app now" in line and "recovery_render: false" in line for line in report["next_action"])
    assert "recovery_render is false" in report["render_detail"]
    assert "Render: not used: recovery_render is false" in render_run_markdown(report)


def resume(**state):
    base = {"schema_converted": True, "alembic_at_head": True, "deploy_live": True, "database_work": False,
            "deploy_needed": False, "work": False, "resume_from": None, "deploy_status": "live",
            "summary": "the schema is converted: yes; ... -> nothing left to do"}
    return base | state


def test_a_resumed_run_skips_what_an_earlier_run_did_and_says_it_resumed():
    evidence = full_run(resume=resume(alembic_at_head=False, deploy_live=False, deploy_needed=True, work=True,
                                      resume_from="alembic_at_head", summary="alembic at head: no"))
    for key in ("backup", "convert_plan", "convert", "alembic"):
        evidence.pop(key)
    report = run_report(evidence)
    assert report["outcome"] == "succeeded", statuses(report)
    assert {k: v for k, v in statuses(report).items() if v == SKIPPED} == {
        "backup": SKIPPED, "convert": SKIPPED, "alembic_reset": SKIPPED, "rotation": SKIPPED}
    assert report["next_action"][0].startswith("Recovered: this run resumed where an earlier one stopped")
    assert report["resume"]["resume_from"] == "alembic_at_head"
    # The state it leaves says who converted the schema, not "not started".
    assert report["state"]["conversion_detail"] == "already done by an earlier run: the schema is converted"


def test_a_resumed_run_whose_deploy_fails_again_stops_at_the_deploy():
    evidence = full_run(resume=resume(deploy_live=False, deploy_needed=True, work=True, resume_from="deploy_live"),
                        deploy={"failed": True, "msg": "503", "deploy": {}})
    for key in ("backup", "convert_plan", "convert", "alembic", *PROOF):
        evidence.pop(key)
    report = run_report(evidence, failure={"task": "Deploy", "message": "503"})
    assert report["outcome"] == "failed" and report["stopped_at"] == "deploy"
    assert not report["next_action"][0].startswith("Nothing to do")


def test_nothing_to_do_only_when_every_condition_holds():
    evidence = {"findings": findings(needed=False, stored=("b354d12d1e7d",), true="b354d12d1e7d"), "render": True,
                "resume": resume(), "maintenance": maintenance(False),
                **proof()}
    report = run_report(evidence)
    assert report["outcome"] == "succeeded"
    assert report["next_action"][0] == ("Nothing to do: the schema is converted, alembic_version holds the head "
                                        "revision and the newest deploy is live.")


def test_commands_name_the_run_inventory_or_say_your_inventory():
    report = run_report({"findings": findings(), "render": True}, inventory="",
                        failure={"task": "Investigate", "message": "boom"})
    assert "ansible-playbook playbooks/recover.yml -i <your inventory>" in " ".join(report["next_action"])
    assert "inventories/production" not in " ".join(report["next_action"])


def test_a_run_stopped_at_the_backup_says_maintenance_is_still_on_and_nothing_changed():
    evidence = {"findings": findings(), "render": True, "maintenance": maintenance(True)}
    failure = {"task": "Dump with pg_dump", "message": f"pg_dump failed: no space left on device ({URL})"}
    report = run_report(evidence, failure=failure)
    assert report["outcome"] == "failed" and report["stopped_at"] == "backup"
    assert statuses(report) == {"investigate": DONE, "maintenance_on": DONE, "backup": FAILED,
                                "convert": NOT_REACHED, "alembic_reset": NOT_REACHED, "deploy": NOT_REACHED,
                                "maintenance_off": NOT_REACHED, "health": NOT_REACHED, "smoke": NOT_REACHED,
                                "logs": NOT_REACHED, "rotation": NOT_REACHED}
    assert report["state"]["maintenance_mode"] == "ON"
    assert report["state"]["conversion"] == "not started" and not report["state"]["database_changed"]
    action = " ".join(report["next_action"])
    assert "Maintenance mode is still ON" in action and "The database was not changed" in action
    assert "ansible-playbook playbooks/recover.yml -i inventories/production" in action
    assert "ansible-playbook playbooks/maintenance.yml -i inventories/production -e maintenance=off" in action
    markdown = render_run_markdown(report)
    assert "FAILED at step backup" in markdown and "no space left on device" in markdown
    assert_no_secret(report, markdown)


def test_a_backup_verified_whose_step_did_not_finish_is_where_the_run_stopped():
    evidence = {"findings": findings(), "render": True, "maintenance": maintenance(True),
                "backup": {"path": BACKUP, "level": "restore", "finished": False}}
    report = run_report(evidence, failure={"task": "Make sure Render holds a recent export", "message": "not found"})
    assert report["stopped_at"] == "backup"
    assert "did not finish" in report["steps"][2]["detail"]
    assert report["state"]["restore_from"] == BACKUP


def test_a_rolled_back_conversion_leaves_the_database_as_before():
    # convert_keys waits with failed_when: false: a failed conversion has failed=False and a message.
    evidence = full_run(convert={"changed": False, "finished": True, "failed": False, "failed_when_result": False,
                                 "msg": "rolled back after an error: deadlock detected"})
    for key in ("alembic", "deploy", *PROOF):
        evidence.pop(key)
    evidence["maintenance"] = maintenance(True)
    report = run_report(evidence, failure={"task": "Report the conversion", "message": "undefined"})
    assert report["stopped_at"] == "convert" and report["state"]["conversion"] == "rolled back"
    assert "deadlock detected" in report["steps"][3]["detail"]
    assert report["figures"]["foreign_keys"]["after"] is None and report["figures"]["columns_converted"] == 0
    assert "as it was before this run (the conversion rolled back)" in report["next_action"][0]
    assert not report["state"]["database_changed"]


@pytest.mark.parametrize("message", [
    "refused before any change: view v depends on users.id",
    "could not lock 50 relations within 300 ms after 1 attempts; blocking sessions: pid 7 holds AccessShareLock",
])
def test_a_refused_or_unlockable_conversion_did_not_start(message):
    evidence = full_run(convert={"changed": False, "finished": True, "failed": False, "msg": message})
    for key in ("alembic", "deploy", *PROOF):
        evidence.pop(key)
    evidence["maintenance"] = maintenance(True)
    report = run_report(evidence)
    assert report["stopped_at"] == "convert" and report["state"]["conversion"] == "not started"
    assert "did not start" in report["next_action"][0]


def test_a_conversion_that_did_not_finish_in_time_may_still_be_running():
    evidence = full_run(convert={"changed": False, "finished": 0, "failed": False, "started": 1})
    for key in ("alembic", "deploy", *PROOF):
        evidence.pop(key)
    evidence["maintenance"] = maintenance(True)
    report = run_report(evidence)
    assert report["stopped_at"] == "convert" and report["state"]["conversion"] == "unknown"
    assert "pg_stat_activity" in report["next_action"][0]


def test_a_failed_deploy_after_the_conversion_offers_the_restore_of_the_backup_taken_before():
    evidence = full_run(deploy={"changed": True, "deploy": {"id": "dep-9", "status": "update_failed"}},
                        maintenance=maintenance(True))
    for key in PROOF:
        evidence.pop(key)
    report = run_report(evidence, failure={"task": "Stop on a failed deploy", "message": "deploy dep-9 ended"})
    assert report["stopped_at"] == "deploy"
    assert statuses(report)["maintenance_off"] == NOT_REACHED and statuses(report)["health"] == NOT_REACHED
    assert report["state"]["conversion"] == "committed" and report["state"]["database_changed"]
    action = " ".join(report["next_action"])
    assert "The keys are converted (committed)" in action and "Maintenance mode is still ON" in action
    assert (f"ansible-playbook playbooks/restore.yml -i inventories/production -e restore_confirm=production "
            f"-e restore_path={BACKUP}") in action
    staging = run_report(evidence, environment="staging")
    assert "restore_confirm" not in " ".join(staging["next_action"])


def test_maintenance_that_could_not_be_turned_off_is_the_next_action():
    evidence = full_run(maintenance={"failed": True, "msg": "Render answered 500"})
    for key in PROOF:
        evidence.pop(key)
    report = run_report(evidence)
    assert report["stopped_at"] == "maintenance_off"
    assert report["state"]["maintenance_mode"].startswith("unknown")
    assert "-e maintenance=off" in report["next_action"][0]


def test_a_failed_log_check_after_health_200_stops_at_health():
    """A failure after the proof's last result (none of its own) is put on the last step that ran."""
    report = run_report(full_run(logs=None), failure={"task": "Scan the logs", "message": "Render answered 500"})
    assert report["outcome"] == "failed" and report["stopped_at"] == "logs"
    assert report["steps"][STEP_IDS.index("logs")]["detail"] == "Render answered 500"
    assert statuses(report)["health"] == DONE and statuses(report)["smoke"] == DONE


def test_an_investigation_that_failed_changed_nothing():
    report = run_report({"render": True}, failure={"task": "Read the catalog", "message": "connection refused"})
    assert report["stopped_at"] == "investigate"
    assert [s["status"] for s in report["steps"][1:]] == [NOT_REACHED] * (len(STEP_IDS) - 1)
    assert report["next_action"][0].startswith("Nothing was changed")
    assert report["state"]["maintenance_mode"] == "not changed by this run"


def test_a_run_that_left_no_failure_but_did_not_finish_is_reported_failed():
    evidence = full_run()
    for key in ("alembic", "deploy", *PROOF):
        evidence.pop(key)
    evidence["maintenance"] = maintenance(True)
    report = run_report(evidence)
    assert report["outcome"] == "failed" and report["stopped_at"] == "alembic_reset"
    assert "no failure recorded" in report["steps"][4]["detail"]


def test_check_mode_changes_nothing_and_says_so():
    evidence = {"findings": findings(), "render": True, "maintenance": maintenance(True),
                "convert_plan": {"changed": True, "plan": {"columns": ["public.users.id"]}, "fk_count_before": 2}}
    report = run_report(evidence, check_mode=True)
    assert report["outcome"] == "checked" and report["check_mode"]
    assert statuses(report)["convert"] == CHECKED
    assert report["next_action"][0].startswith("Check mode: nothing was changed")


def test_secrets_never_reach_a_report_wherever_they_hide():
    evidence = full_run(deploy={"deploy": {"id": f"dep-{API_KEY}", "status": "live"}},
                        health={"status": 200, "ok": True, "url": f"https://x.example/health?k={API_KEY}",
                                "msg": f"https://x.example/health?k={API_KEY} answered 200"})
    evidence["findings"]["database"]["url"] = URL
    report = run_report(evidence, failure={"task": "t", "message": f"login failed for {PASSWORD}"})
    assert_no_secret(report, render_run_markdown(report))
    assert "[redacted]" in json.dumps(report)
