"""The run report from results the roles register: the deploy step names what happened (never
"deploy ? ended ?"), a plan refused under failed_when: false is a failed plan."""

from __future__ import annotations

import json

from ansible.module_utils.run_report import STEP_IDS

from tests.unit.test_run_report import PROOF, full_run, maintenance, run_report


def test_a_deploy_that_could_not_be_started_says_why_not_question_marks():
    """The deploy task failed before Render made a deploy (an API error): its message, not
    "deploy ? ended ?"; one that ended badly is named with its status."""
    api_error = "service srv-x: Render server error (HTTP 503) on POST /services/srv-x/deploys (gave up)"
    for deploy, detail in (
            ({"failed": True, "msg": api_error}, api_error),
            ({"failed": True, "changed": True, "deploy": {"id": "dep-9", "status": "update_failed"}},
             "deploy dep-9 ended update_failed")):
        evidence = full_run(deploy=deploy, maintenance=maintenance(True))
        for key in PROOF:
            evidence.pop(key)
        report = run_report(evidence, failure={"task": "Stop on a failed deploy", "message": "x"})
        assert report["steps"][STEP_IDS.index("deploy")]["detail"] == detail
        assert "?" not in report["steps"][STEP_IDS.index("deploy")]["detail"]


def test_a_refused_plan_registered_with_failed_when_false_is_reported_as_not_started():
    """convert_keys registers its no_log plan with failed_when: false and fails in the next task
    with the module's `error`: the report still says planning failed, never "nothing to convert"."""
    evidence = full_run()
    for step in ("convert", *PROOF):
        evidence.pop(step)
    evidence["convert_plan"] = {"changed": False, "failed": False, "failed_when_result": False,
                                "error": "refused before any change: column public.nope.id does not exist",
                                "msg": "refused before any change: column public.nope.id does not exist"}
    report = run_report(evidence, failure={"task": "Stop before any change when planning refused, saying why",
                                           "message": "refused before any change"})
    assert report["state"]["conversion"].startswith("not started")
    assert "column public.nope.id does not exist" in json.dumps(report)
