"""The run report's rotation step: a finished rotation and its actions, one that stopped,
none needed, and an alter_role password change."""

from __future__ import annotations

from ansible.module_utils.run_report import _rotation_step
from ansible.module_utils.run_report_common import DONE, SKIPPED
from ansible.module_utils.run_report_markdown import render_run_markdown

from tests.unit.test_run_report import full_run, run_report, statuses


def test_a_finished_rotation_is_done_and_its_actions_are_the_next_action():
    rotation = {"status": "rotated", "new_user": "app_20261124", "deleted_users": ["app_a", "app_b"],
                "actions": ["Update vault_recovery_database_url in inventories/production/group_vars/all/vault.yml"]}
    report = run_report(full_run(rotation=rotation))
    assert report["outcome"] == "succeeded" and statuses(report)["rotation"] == DONE
    assert report["steps"][-1]["detail"] == "leaked users app_a, app_b deleted; the services use app_20261124"
    assert rotation["actions"][0] in report["next_action"]
    assert "Rotate the leaked credentials | done" in render_run_markdown(report)


def test_a_rotation_that_stopped_says_the_app_is_up_and_how_to_resume():
    report = run_report(full_run(rotation={"status": "started"}),
                        failure={"task": "Stop on a deploy that is not live", "message": "deploy dep-1 ended"})
    assert report["outcome"] == "failed" and report["stopped_at"] == "rotation"
    assert statuses(report)["health"] == DONE
    action = " ".join(report["next_action"])
    assert "recovered and healthy" in action and "they still work" in action
    assert "ansible-playbook playbooks/rotate_credentials.yml -i inventories/production" in action
    assert "restore" not in action


def test_no_leaked_user_left_skips_the_rotation():
    report = run_report(full_run(rotation={"status": "nothing_to_do", "actions": []}))
    assert report["outcome"] == "succeeded"
    assert report["steps"][-1] == {"id": "rotation", "title": "Rotate the leaked credentials", "status": SKIPPED,
                                   "detail": "no leaked database user left"}


def test_an_alter_role_rotation_reads_as_a_password_change():
    status, detail = _rotation_step({"strategy": "alter_role", "status": "rotated", "role": "app",
                                     "where": "db on 10.0.0.5:5432", "env_files": ["/srv/app/.env"]})
    assert status == DONE
    assert detail == ("password of app on db on 10.0.0.5:5432 replaced (ALTER ROLE, SCRAM verifier), the old one "
                      "proven dead; .env files updated: /srv/app/.env")
