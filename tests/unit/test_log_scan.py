"""The log scan without Render: the window (last N minutes, never before the deploy judged), the
default patterns against the lines a broken recovery leaves, redaction of the lines named, and
the run report's post-deploy proof (where a run stopped, what it names, never a secret)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest
import yaml
from ansible.module_utils.log_scan import compile_patterns, match_lines, scan_logs, window
from ansible.module_utils.run_report import STEP_IDS
from ansible.module_utils.run_report_common import FAILED
from ansible.module_utils.run_report_markdown import render_run_markdown

from tests.unit.test_run_report import API_KEY, full_run, maintenance, run_report, statuses

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "roles", "app_deploy", "defaults", "main.yml")) as _handle:
    PATTERNS = yaml.safe_load(_handle)["app_deploy_log_fail_patterns"]

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


class FakeRender:
    def __init__(self, lines, has_more=False, live_since="2026-11-24T01:50:00Z"):
        self.lines, self.has_more, self.live_since = lines, has_more, live_since
        self.queries = []

    def get_service(self, service_id):
        return {"id": service_id, "ownerId": "tea-x"}

    def list_deploys(self, service_id, *, status=None, limit=100, max_items=None):
        assert status == "live"
        return [{"id": "dep-live", "createdAt": self.live_since}]

    def query_logs(self, owner_id, resources, **kwargs):
        self.queries.append(kwargs)
        return {"logs": [{"message": m, "timestamp": f"2026-11-24T01:5{i}:00Z"} for i, m in enumerate(self.lines)],
                "has_more": self.has_more}


@pytest.mark.parametrize("line", [
    "sqlalchemy.exc.ProgrammingError: (psycopg2.errors.UndefinedFunction) operator does not exist: "
    "character varying = uuid",
    "ERROR: Key columns \"org_id\" and \"id\" are of incompatible types: character varying and uuid.",
    "psycopg2.errors.ForeignKeyViolation: insert or update on table \"deals\" violates foreign key constraint",
    "Traceback (most recent call last):",
    "FATAL: password authentication failed for user \"app\"",
])
def test_the_default_patterns_find_what_a_broken_recovery_leaves(line):
    count, hits = match_lines([{"message": line}], compile_patterns(PATTERNS))
    assert count == 1 and hits[0]["line"] == line


def test_ordinary_lines_pass():
    lines = ["127.0.0.1 \"POST /api/deals HTTP/1.1\" 201 -", "INFO [alembic.runtime.migration] Running upgrade",
             "==> Your service is live", "GET /health 200"]
    assert match_lines([{"message": m} for m in lines], compile_patterns(PATTERNS)) == (0, [])


def test_a_pattern_that_is_no_regular_expression_is_named():
    with pytest.raises(ValueError, match=r"log pattern '\(unclosed' is not a regular expression"):
        compile_patterns(["fine", "(unclosed"])


def test_the_window_is_the_last_minutes_but_never_before_the_deploy():
    start, end = window(NOW, 30, "2026-11-24T01:50:00Z")
    assert (start.isoformat(), end) == ("2026-11-24T01:50:00+00:00", NOW)
    start, _ = window(NOW, 30, "2026-11-23T10:00:00Z")
    assert start.isoformat() == "2026-11-24T01:30:00+00:00"


def test_a_hit_names_its_line_redacted_and_shortened():
    secret_line = ("operator does not exist: character varying = uuid; url postgresql://app:pw123@db/app "
                   f"token Bearer {API_KEY} " + "x" * 400)
    render = FakeRender(["ok line", secret_line])
    result = scan_logs(render, "srv-x", patterns=PATTERNS, minutes=30, since="2026-11-24T01:52:00Z",
                       types=["app"], secrets=[API_KEY], now=NOW)
    assert result["ok"] is False and result["matched"] == 1 and result["lines_checked"] == 2
    line = result["hits"][0]["line"]
    assert "pw123" not in line and API_KEY not in line and "postgresql://app:********@db/app" in line
    assert len(line) == 300 and line.endswith("\u2026")
    assert result["msg"].startswith("1 of 2 log lines of srv-x since 2026-11-24T01:52:00.000000Z match a failure "
                                    "pattern: [2026-11-24T01:51:00Z] operator does not exist")
    assert render.queries[0] | {} == {"start_time": "2026-11-24T01:52:00.000000Z",
                                      "end_time": "2026-11-24T02:00:00.000000Z", "direction": "backward",
                                      "filters": {"type": ["app"]}, "max_logs": 2000}


def test_without_a_deploy_in_this_run_the_newest_live_deploy_bounds_the_window_and_more_lines_are_said():
    render = FakeRender(["fine"], has_more=True, live_since="2026-11-24T01:45:00Z")
    result = scan_logs(render, "srv-x", patterns=PATTERNS, minutes=60, now=NOW, max_lines=1)
    assert result["ok"] is True and result["start"] == "2026-11-24T01:45:00.000000Z" and not result["complete"]
    assert result["msg"] == ("1 log lines of srv-x since 2026-11-24T01:45:00.000000Z (the newest ones only: more "
                             "lines exist than were read): none matches a failure pattern")


# ----------------------------------------------------------------------------- the run report's proof

def failed_smoke():
    return {"ok": False, "failed_request": "create deal", "cleanup_failed": [],
            "requests": [
                {"name": "create organization", "phase": "smoke", "method": "POST",
                 "url": "https://app.example/api/organizations", "expected": [201], "status": 201, "ok": True,
                 "skipped": False, "msg": "ok"},
                {"name": "create deal", "phase": "smoke", "method": "POST", "url": "https://app.example/api/deals",
                 "expected": [201], "status": 500, "ok": False, "skipped": False, "msg": "answered 500"},
                {"name": "delete deal", "phase": "cleanup", "method": "DELETE",
                 "url": "https://app.example/api/deals/${deal_id}", "expected": [204], "status": None, "ok": None,
                 "skipped": True, "msg": "not sent"},
                {"name": "delete organization", "phase": "cleanup", "method": "DELETE",
                 "url": "https://app.example/api/organizations/o-1", "expected": [204], "status": 204, "ok": True,
                 "skipped": False, "msg": "ok"}],
            "msg": "smoke request 'create deal' (POST https://app.example/api/deals) answered 500, expected 201"}


def test_a_failed_smoke_request_stops_the_run_at_the_smoke_step_naming_it():
    evidence = full_run(smoke=failed_smoke())
    evidence.pop("logs")
    report = run_report(evidence, failure={"task": "Stop when a smoke or cleanup request failed",
                                           "message": failed_smoke()["msg"]})
    assert report["outcome"] == "failed" and report["stopped_at"] == "smoke"
    assert statuses(report)["health"] == "done" and statuses(report)["logs"] == "not reached"
    assert "create deal" in report["steps"][STEP_IDS.index("smoke")]["detail"]
    assert report["state"]["maintenance_mode"] == "off"
    assert "failed a smoke request" in report["next_action"][0]
    assert report["proof"]["smoke"]["failed_request"] == "create deal"
    markdown = render_run_markdown(report)
    assert "## Post-deploy proof" in markdown and "- smoke requests: FAILED at 'create deal'" in markdown
    assert "| smoke | create deal | POST https://app.example/api/deals | 201 | 500 | FAILED |" in markdown
    assert "| cleanup | delete deal | DELETE https://app.example/api/deals/${deal_id} | 204 | not sent | skipped |" \
        in markdown


def test_a_log_hit_stops_the_run_at_the_logs_naming_the_line():
    hit = {"timestamp": "2026-11-24T01:51:00Z", "pattern": "(?i:operator does not exist)",
           "line": "operator does not exist: character varying = uuid"}
    logs = {"ok": False, "lines_checked": 40, "complete": True, "matched": 1, "hits": [hit],
            "msg": "1 of 40 log lines match a failure pattern: [2026-11-24T01:51:00Z] operator does not exist"}
    report = run_report(full_run(logs=logs), failure={"task": "Stop when a log line shows a failure, naming it",
                                                      "message": logs["msg"]})
    assert report["stopped_at"] == "logs" and statuses(report)["smoke"] == "done"
    assert "operator does not exist" in report["steps"][STEP_IDS.index("logs")]["detail"]
    assert "failed its log check" in report["next_action"][0]
    assert "- log line [2026-11-24T01:51:00Z] matching `(?i:operator does not exist)`: operator does not exist" \
        in render_run_markdown(report)


def test_an_app_still_answering_in_maintenance_stops_before_any_database_change():
    check = {"url": "https://app.example/health", "status": 200, "ok": False, "attempts": 6,
             "msg": "https://app.example/health answered 200, expected 503 (after 6 attempts over 5 s)"}
    evidence = {"findings": full_run()["findings"], "render": True, "maintenance": maintenance(True),
                "maintenance_check": check}
    report = run_report(evidence, failure={"task": "Stop before any database change when the app still answers",
                                           "message": "maintenance mode is on at Render, but ..."})
    assert report["stopped_at"] == "maintenance_on"
    step = report["steps"][STEP_IDS.index("maintenance_on")]
    assert step["status"] == FAILED and "answered 200, expected 503" in step["detail"]
    assert "stopped before any database change" in step["detail"]
    assert not report["state"]["database_changed"] and report["state"]["maintenance_mode"] == "ON"
    assert report["next_action"][0].startswith("The database was not changed.")


def test_a_confirmed_maintenance_and_a_failing_frontend_are_reported():
    check = {"url": "https://app.example/health", "status": 503, "ok": True, "attempts": 1,
             "msg": "https://app.example/health answered 503"}
    frontend = {"url": "https://app.example/", "status": 502, "ok": False, "attempts": 12,
                "msg": "https://app.example/ answered 502, expected 200 (after 12 attempts over 11 s)"}
    evidence = full_run(maintenance_check=check, frontend=frontend)
    for key in ("smoke", "logs"):
        evidence.pop(key)
    report = run_report(evidence, failure={"task": "Stop when the app or its frontend does not answer 200",
                                           "message": frontend["msg"]})
    assert report["steps"][STEP_IDS.index("maintenance_on")]["detail"] == (
        "maintenance mode was turned on; seen from outside: https://app.example/health answered 503")
    assert report["stopped_at"] == "health"
    assert report["steps"][STEP_IDS.index("health")]["detail"].startswith("frontend: https://app.example/ answered 502")
    assert "failed its health check" in report["next_action"][0]
    assert json.loads(json.dumps(report))["proof"]["frontend"]["status"] == 502
