"""The run report's deploy step names what happened, never "deploy ? ended ?"."""

from __future__ import annotations

from ansible.module_utils.run_report import STEP_IDS

from tests.unit.test_run_report import full_run, maintenance, run_report


def test_a_deploy_that_could_not_be_started_says_why_not_question_marks():
    """The deploy task failed before Render made a deploy (an API error): its message, not
    "deploy ? ended ?"; one that ended badly is named with its status."""
    api_error = "service srv-x: Render server error (HTTP 503) on POST /services/srv-x/deploys (gave up)"
    for deploy, detail in (
            ({"failed": True, "msg": api_error}, api_error),
            ({"failed": True, "changed": True, "deploy": {"id": "dep-9", "status": "update_failed"}},
             "deploy dep-9 ended update_failed")):
        evidence = full_run(deploy=deploy, maintenance=maintenance(True))
        evidence.pop("health")
        evidence.pop("logs")
        report = run_report(evidence, failure={"task": "Stop on a failed deploy", "message": "x"})
        assert report["steps"][STEP_IDS.index("deploy")]["detail"] == detail
        assert "?" not in report["steps"][STEP_IDS.index("deploy")]["detail"]
