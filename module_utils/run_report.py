"""The run report of a recovery (playbooks/recover.yml's run-report.{md,json}).

Pure: everything here takes the public results the roles publish (each role's
<role>_result, as plain dicts, any of them missing) and the playbook's own facts,
and returns a dict (run_report_markdown.py renders it). No I/O, no Ansible.
What a report holds is picked field by field, never copied wholesale, and every
string is passed through redact() with the run's secrets, so neither the
database password nor the API key can reach a report.
"""

from __future__ import annotations

from ansible.module_utils import app_proof_report as proof
from ansible.module_utils.redaction import redact
from ansible.module_utils.run_id import run_id_time
from ansible.module_utils.run_report_common import (
    CHECKED,
    DONE,
    FAILED,
    NOT_REACHED,
    ONLINE_SERVING,
    RENDER_OFF,
    REPORT_VERSION,
    SKIPPED,
    _seconds_between,
    dig,
    short_list,
    task_failed,
    task_ran,
)
from ansible.module_utils.run_report_figures import conversion_failed, figures
from ansible.module_utils.run_report_next import next_action

_PENDING = "pending"  # internal: expected, no evidence it completed

# The steps of playbooks/recover.yml, in order. render: needs the Render API;
# recovery: runs only when there is something to recover.
STEPS = (
    {"id": "investigate", "title": "Investigate (read-only)", "render": False, "recovery": False},
    {"id": "maintenance_on", "title": "Maintenance mode on", "render": True, "recovery": True},
    {"id": "backup", "title": "Verified backup", "render": False, "recovery": True},
    {"id": "convert", "title": "Convert the keys (one transaction)", "render": False, "recovery": True},
    {"id": "alembic_reset", "title": "alembic_version to the true revision", "render": False, "recovery": True},
    {"id": "deploy", "title": "Deploy (its pre-deploy runs the migrations)", "render": True, "recovery": True},
    {"id": "maintenance_off", "title": "Maintenance mode off", "render": True, "recovery": False},
    # The post-deploy proof (app_deploy's tasks_from proof; module_utils/app_proof_report.py).
    {"id": "health", "title": "Health: the health path and the frontend answer 200", "render": True,
     "recovery": False},
    {"id": "smoke", "title": "Smoke requests through the app's API (and their cleanup)", "render": True,
     "recovery": False},
    {"id": "logs", "title": "The deploy's logs: no FK violation, type error or traceback", "render": True,
     "recovery": False},
    # Last, once the app is back: leaked database users replaced (credential_rotation).
    {"id": "rotation", "title": "Rotate the leaked credentials", "render": True, "recovery": False},
)
STEP_IDS = tuple(s["id"] for s in STEPS)

# pg_convert_keys messages of a conversion that failed before changing anything.
NOT_STARTED_MESSAGES = ("refused before any change", "could not lock", "the schema kept changing")



def _recovery_needed(findings, resume=None) -> bool | None:
    if isinstance(resume, dict) and "work" in resume:
        return bool(resume["work"])  # recover.yml's own decision (module_utils/recovery_resume.py)
    if not isinstance(findings, dict) or "conversion_needed" not in findings:
        return None
    alembic = findings.get("alembic") or {}
    return bool(findings["conversion_needed"]) or (bool(alembic) and not alembic.get("matches", True))


def _conversion_state(ev: dict, check_mode: bool) -> tuple[str, str]:
    """(state, detail) of the key conversion: how the database was left."""
    result, plan = ev.get("convert"), ev.get("convert_plan")
    if task_ran(result):
        if not result.get("finished", True):
            return "unknown", "the conversion job did not finish in time; it may still be running"
        if result.get("post_commit_errors"):
            return "committed", "committed, but after commit: " + "; ".join(result["post_commit_errors"])
        if conversion_failed(result):
            msg = str(result.get("msg") or "")
            if msg.startswith(NOT_STARTED_MESSAGES):
                return "not started", "did not start, nothing changed: " + msg
            return "rolled back", "failed and rolled back, nothing committed: " + msg
        if result.get("changed"):
            return "committed", f"{len(result.get('columns_converted') or [])} columns converted and committed"
        return "nothing to convert", "nothing to convert"
    if task_ran(plan):
        if plan.get("failed") or plan.get("error") is not None or "plan" not in plan:  # failed_when: false
            return "not started", "planning failed: " + str(plan.get("error") or plan.get("msg") or "")
        if not dig(plan, "plan", "columns"):
            return "nothing to convert", "every key and FK-linked column already has the target type"
        if check_mode:
            return "planned", f"would convert {len(plan['plan']['columns'])} columns (check mode)"
        return "not started", "planned, not started"
    resume = ev.get("resume") if isinstance(ev.get("resume"), dict) else {}
    if resume.get("database_work") is False:  # recover.yml found the schema already converted
        return "nothing to convert", "already done by an earlier run: the schema is converted"
    return "not started", "not started"


_PROOF_STATUS = {proof.DONE: DONE, proof.FAILED: FAILED, proof.SKIPPED: SKIPPED, proof.CHECKED: CHECKED,
                 proof.PENDING: _PENDING}


def _evaluate(ev: dict, check_mode: bool) -> list[dict]:
    """Each step with an internal state: done/skipped/failed/_PENDING and a detail."""
    findings = ev.get("findings")
    render = bool(ev.get("render"))
    resume = ev.get("resume") if isinstance(ev.get("resume"), dict) else {}
    needed = _recovery_needed(findings, resume)
    maint = ev.get("maintenance")
    maint_enabled = dig(maint, "maintenance_mode", "enabled") if task_ran(maint) and not task_failed(maint) else None
    backup = ev.get("backup") or {}
    conv_state, conv_detail = _conversion_state(ev, check_mode)
    online = dig(ev.get("convert_plan"), "plan", "mode") == "online"
    later_than_maintenance = bool(backup.get("path")) or task_ran(ev.get("convert_plan")) or task_ran(ev.get("deploy"))
    out = []
    for step in STEPS:
        sid = step["id"]
        status, detail = _PENDING, ""
        if step["render"] and not render:
            status, detail = SKIPPED, RENDER_OFF
        elif step["recovery"] and needed is False:
            status, detail = SKIPPED, "nothing to recover"
        elif sid in ("backup", "convert", "alembic_reset") and resume.get("database_work") is False:
            status, detail = SKIPPED, "already done: the schema is converted and alembic_version is right"
        elif sid == "deploy" and resume.get("deploy_needed") is False and not task_ran(ev.get("deploy")):
            status, detail = SKIPPED, "the newest deploy is live"
        elif sid == "investigate":
            if isinstance(findings, dict) and findings:
                fks = dig(findings, "foreign_keys", "count")
                detail = (f"conversion needed: {'yes' if findings.get('conversion_needed') else 'no'}; "
                          f"{len(findings.get('columns_to_convert') or [])} columns to convert, {fks} FKs")
                status = DONE
        elif sid == "maintenance_on":
            outside = proof.maintenance_check_failure(ev.get("maintenance_check"))
            if online and not maint_enabled:
                status, detail = SKIPPED, ONLINE_SERVING
            elif outside:  # Render switched it on, but the app still answered: nothing else ran
                status, detail = FAILED, outside
            elif maint_enabled is True or later_than_maintenance:
                status, detail = DONE, "maintenance mode was turned on" + proof.maintenance_check_note(
                    ev.get("maintenance_check"))
            elif task_failed(maint):
                status, detail = FAILED, str(maint.get("msg") or "the change failed")
        elif sid == "backup":
            if backup.get("path"):
                detail = f"{backup['path']} verified at level {backup.get('level') or '?'}"
                # The backup role goes on after verifying (Render export, retention).
                if backup.get("finished", True) or task_ran(ev.get("convert_plan")) or task_ran(ev.get("convert")):
                    status = DONE
                else:
                    detail += ", but the backup step did not finish"
        elif sid == "convert":
            converted = ev.get("convert")
            if conv_state == "committed" and not conversion_failed(converted):
                status, detail = DONE, conv_detail
            elif conv_state == "nothing to convert":
                status, detail = SKIPPED, conv_detail
            elif conv_state in ("rolled back", "unknown", "committed") or (
                    conv_state == "not started" and conv_detail != "not started"
                    and (task_ran(converted) or task_failed(ev.get("convert_plan")))):
                status, detail = FAILED, conv_detail
            elif conv_state == "planned":
                status, detail = CHECKED, conv_detail
        elif sid == "alembic_reset":
            result = ev.get("alembic")
            if task_failed(result):
                status, detail = FAILED, str(result.get("msg") or "failed")
            elif task_ran(result):
                stored = ", ".join(result.get("stored") or []) or "nothing"
                status = CHECKED if check_mode else DONE
                detail = (f"{stored} -> {result.get('revision')}" if result.get("changed")
                          else f"already {result.get('revision')}")
        elif sid == "deploy":
            result = ev.get("deploy")
            deploy = dig(result, "deploy", default={})
            if task_ran(result) and check_mode:
                status, detail = CHECKED, "would deploy"
            elif task_ran(result) and deploy.get("status") == "live" and not result.get("failed"):
                status, detail = DONE, f"deploy {deploy.get('id')} is live"
            elif task_ran(result) and deploy.get("id"):
                status, detail = FAILED, f"deploy {deploy['id']} ended {deploy.get('status') or 'unknown'}"
            elif task_ran(result):  # no deploy to name: Render's answer (an API error, a timeout) says why
                status, detail = FAILED, str(result.get("msg") or "the deploy could not be started")
        elif sid == "maintenance_off":
            if maint_enabled is False:
                status, detail = DONE, "maintenance mode is off"
            elif task_failed(maint) and (needed is False or conv_state in ("committed", "nothing to convert")):
                status, detail = FAILED, str(maint.get("msg") or "the change failed")
        elif sid in ("health", "smoke", "logs"):
            found = (proof.health_step(ev.get("health"), ev.get("frontend")) if sid == "health"
                     else proof.smoke_step(ev.get("smoke")) if sid == "smoke" else proof.logs_step(ev.get("logs")))
            status, detail = _PROOF_STATUS[found[0]], found[1]
        elif sid == "rotation":
            status, detail = _rotation_step(ev.get("rotation"))
        out.append({"id": sid, "title": step["title"], "status": status, "detail": detail})
    return out


def _resume_report(resume) -> dict | None:
    """Where the recovery stood when the run started (recover.yml's resume decision)."""
    if not isinstance(resume, dict):
        return None
    keys = ("schema_converted", "alembic_at_head", "deploy_live", "deploy_status", "resume_from", "work", "summary")
    return {k: resume.get(k) for k in keys}


def _rotation_step(rotation) -> tuple[str, str]:
    """credential_rotation_result: started (and not finished), rotated, nothing_to_do, planned."""
    rotation = rotation if isinstance(rotation, dict) else {}
    state = rotation.get("status")
    if rotation.get("strategy") == "alter_role" and state in ("rotated", "planned"):
        files = [str(f) for f in rotation.get("env_files") or []]
        return (DONE, f"password of {rotation.get('role')} on {rotation.get('where')} replaced (ALTER ROLE, "
                      f"SCRAM verifier), the old one proven dead"
                      + (f"; .env files updated: {', '.join(files)}" if files else "")) if state == "rotated" else (
            CHECKED, f"would replace the password of {rotation.get('role')} on {rotation.get('where')}")
    if state == "rotated":
        return DONE, (f"leaked users {short_list(rotation.get('deleted_users') or [])} deleted; "
                      f"the services use {rotation.get('new_user')}")
    if state == "planned":
        return CHECKED, f"would move the services to {rotation.get('new_user')} and delete the leaked users"
    if state == "nothing_to_do":
        return SKIPPED, "no leaked database user left"
    if state == "started":
        return _PENDING, ""
    return SKIPPED, ""  # not part of this run (not configured, or the run ended before it)


def _maintenance_state(ev: dict) -> str:
    if not ev.get("render"):
        return "not managed by this run (recovery_render: false)"
    maint = ev.get("maintenance")
    if task_failed(maint):
        return "unknown: the last change failed (look at the Render dashboard)"
    if task_ran(maint):
        enabled = dig(maint, "maintenance_mode", "enabled")
        if enabled is True:
            return "ON"
        if enabled is False:
            return "off"
    return "not changed by this run"


def assemble_run_report(evidence: dict, *, environment: str, host: str, run_id: str,
                        started_at: str | None, ended_at: str, check_mode: bool = False,
                        failure: dict | None = None, manifest_sha256: str | None = None, secrets=(),
                        commands=None) -> dict:
    """The run report from what the roles left; evidence keys (all optional):
    findings, render, maintenance, backup {path, level, manifest, gate_path}, convert_plan,
    convert, alembic, deploy, maintenance_check, health, frontend, smoke, logs (app_deploy_result),
    rotation (credential_rotation_result)."""
    ev = dict(evidence or {})
    failure = {k: str(v) for k, v in (failure or {}).items() if v}
    steps = _evaluate(ev, check_mode)

    evidence_failed = [i for i, s in enumerate(steps) if s["status"] == FAILED]
    pending = [i for i, s in enumerate(steps) if s["status"] == _PENDING]
    stopped_index = None
    if check_mode and not failure and not evidence_failed:
        for s in steps:
            if s["status"] in (_PENDING, DONE):
                s["status"] = CHECKED
        outcome = "checked"
    else:
        # Where the run stopped: a step whose own result failed; else the first step
        # expected to run that left no trace of completing; else (a failure after the
        # last step's result, e.g. its log check) the last step that ran.
        if evidence_failed:
            stopped_index = evidence_failed[0]
        elif pending:
            stopped_index = pending[0]
        elif failure:
            ran = [i for i, s in enumerate(steps) if s["status"] in (DONE, CHECKED)]
            stopped_index = ran[-1] if ran else 0
            steps[stopped_index]["detail"] = ""
        outcome = "failed" if stopped_index is not None else "succeeded"
        if stopped_index is not None:
            stop = steps[stopped_index]
            stop["status"] = FAILED
            stop["detail"] = stop["detail"] or failure.get("message") or "did not complete (no failure recorded)"
            for s in steps[stopped_index + 1:]:
                if s["status"] in (_PENDING, FAILED) or (s["id"] == "rotation" and not ev.get("rotation")):
                    s["status"], s["detail"] = NOT_REACHED, ""

    conv_state, conv_detail = _conversion_state(ev, check_mode)
    reset = ev.get("alembic")
    report = {
        "kind": "run-report",
        "version": REPORT_VERSION,
        "environment": environment,
        "host": host,
        "run_id": run_id,
        "started_at": started_at or run_id_time(run_id),
        "ended_at": ended_at,
        "check_mode": bool(check_mode),
        "render": bool(ev.get("render")),
        "render_detail": "used" if ev.get("render") else RENDER_OFF,
        "resume": _resume_report(ev.get("resume")),
        "outcome": outcome,
        "stopped_at": steps[stopped_index]["id"] if stopped_index is not None else None,
        "failure": failure or None,
        "steps": steps,
        "state": {
            "maintenance_mode": _maintenance_state(ev),
            "conversion": conv_state,
            "conversion_detail": conv_detail,
            "database_changed": conv_state == "committed" or (task_ran(reset) and bool(reset.get("changed"))
                                                               and not check_mode),
            "restore_from": (ev.get("backup") or {}).get("path") or (ev.get("backup") or {}).get("gate_path"),
        },
        "figures": figures(ev, manifest_sha256),
        # The gates a protected environment met, and the schema this run started and ended
        # with: a later production run's staging-first gate compares its schema with these.
        "gates": [g for g in dig(ev, "gates", "gates", default=[]) or [] if isinstance(g, dict)],
        "schema_fingerprint": dig(ev, "gates", "schema_fingerprint"),
        "schema_fingerprint_after": dig(ev, "schema_after", "schema_fingerprint"),
        # What the operator must do after a rotation (e.g. update the vault): names, never values.
        "rotation_actions": [str(a) for a in dig(ev, "rotation", "actions", default=[]) or []],
        # What the post-deploy proof asked the app and what it answered (never a header value).
        "proof": proof.proof_section(ev),
    }
    report["duration_seconds"] = _seconds_between(report["started_at"], ended_at)
    report["next_action"] = next_action(report, commands or {})
    return redact(report, secrets)
