"""The run report of a recovery and the report of a scheduled verification.

Pure: everything here takes the results the roles left (registered results and
facts, as plain dicts, any of them missing) and returns dicts and Markdown. No
I/O, no Ansible. What a report holds is picked field by field, never copied
wholesale, and every string is passed through redact() with the run's secrets,
so neither the database password nor the API key can reach a report.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ansible.module_utils import app_proof_report as proof
from ansible.module_utils.run_report_next import inventory_option, next_action

REPORT_VERSION = 1

DONE = "done"
SKIPPED = "skipped"
FAILED = "failed"
NOT_REACHED = "not reached"
CHECKED = "checked (check mode)"
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

RUN_ID_FORMAT = "%Y%m%dT%H%M%SZ"
REDACTED = "[redacted]"

# A run without Render says so wherever a Render step would be.
RENDER_OFF = "not used: recovery_render is false (no maintenance mode, deploy, health check or credential rotation)"

# pg_convert_keys messages of a conversion that failed before changing anything.
NOT_STARTED_MESSAGES = ("refused before any change", "could not lock", "the schema kept changing")

# Verification check statuses; drift and error make the verification fail.
OK, DRIFT, ERROR, WARN, INFO = "ok", "drift", "error", "warn", "info"
FAILING = (DRIFT, ERROR)


# ----------------------------------------------------------------------------- helpers

def redact(value, secrets):
    """value with every occurrence of each non-empty secret replaced, recursively."""
    secrets = sorted({s for s in (secrets or []) if isinstance(s, str) and s}, key=len, reverse=True)
    if not secrets:
        return value

    def walk(item):
        if isinstance(item, str):
            for secret in secrets:
                item = item.replace(secret, REDACTED)
            return item
        if isinstance(item, dict):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    return walk(value)


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_id_time(run_id: str) -> str | None:
    """The ISO time a run id like 20261124T014249Z names, or None."""
    try:
        return utc_iso(datetime.strptime(run_id or "", RUN_ID_FORMAT).replace(tzinfo=UTC))
    except ValueError:
        return None


def _seconds_between(start: str | None, end: str | None) -> float | None:
    try:
        first = datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ")
        last = datetime.strptime(end, "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        return None
    return (last - first).total_seconds()


def _ran(result) -> bool:
    """A registered result of a task that ran (not skipped, not missing)."""
    return isinstance(result, dict) and bool(result) and not result.get("skipped")


def _failed(result) -> bool:
    return _ran(result) and bool(result.get("failed"))


def _get(data, *path, default=None):
    for key in path:
        if not isinstance(data, dict) or key not in data or data[key] is None:
            return default
        data = data[key]
    return data


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(headers, rows) -> list[str]:
    if not rows:
        return ["_none_", ""]
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def _names(items, limit=5) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# ----------------------------------------------------------------------------- the run report

def _recovery_needed(findings, resume=None) -> bool | None:
    if isinstance(resume, dict) and "work" in resume:
        return bool(resume["work"])  # recover.yml's own decision (module_utils/recovery_resume.py)
    if not isinstance(findings, dict) or "conversion_needed" not in findings:
        return None
    alembic = findings.get("alembic") or {}
    return bool(findings["conversion_needed"]) or (bool(alembic) and not alembic.get("matches", True))


def _conversion_failed(result) -> bool:
    """convert_keys waits with failed_when: false, so a failed conversion shows as a
    message without the success fields (or with post-commit errors), not as failed."""
    return bool(result.get("failed")) or bool(result.get("post_commit_errors")) \
        or (bool(result.get("msg")) and "columns_converted" not in result)


def _conversion_state(ev: dict, check_mode: bool) -> tuple[str, str]:
    """(state, detail) of the key conversion: how the database was left."""
    result, plan = ev.get("convert"), ev.get("convert_plan")
    if _ran(result):
        if not result.get("finished", True):
            return "unknown", "the conversion job did not finish in time; it may still be running"
        if result.get("post_commit_errors"):
            return "committed", "committed, but after commit: " + "; ".join(result["post_commit_errors"])
        if _conversion_failed(result):
            msg = str(result.get("msg") or "")
            if msg.startswith(NOT_STARTED_MESSAGES):
                return "not started", "did not start, nothing changed: " + msg
            return "rolled back", "failed and rolled back, nothing committed: " + msg
        if result.get("changed"):
            return "committed", f"{len(result.get('columns_converted') or [])} columns converted and committed"
        return "nothing to convert", "nothing to convert"
    if _ran(plan):
        if plan.get("failed") or plan.get("error") is not None or "plan" not in plan:  # failed_when: false
            return "not started", "planning failed: " + str(plan.get("error") or plan.get("msg") or "")
        if not _get(plan, "plan", "columns"):
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
    maint_enabled = _get(maint, "maintenance_mode", "enabled") if _ran(maint) and not _failed(maint) else None
    backup = ev.get("backup") or {}
    conv_state, conv_detail = _conversion_state(ev, check_mode)
    later_than_maintenance = bool(backup.get("path")) or _ran(ev.get("convert_plan")) or _ran(ev.get("deploy"))
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
        elif sid == "deploy" and resume.get("deploy_needed") is False and not _ran(ev.get("deploy")):
            status, detail = SKIPPED, "the newest deploy is live"
        elif sid == "investigate":
            if isinstance(findings, dict) and findings:
                fks = _get(findings, "foreign_keys", "count")
                detail = (f"conversion needed: {'yes' if findings.get('conversion_needed') else 'no'}; "
                          f"{len(findings.get('columns_to_convert') or [])} columns to convert, {fks} FKs")
                status = DONE
        elif sid == "maintenance_on":
            outside = proof.maintenance_check_failure(ev.get("maintenance_check"))
            if outside:  # Render switched it on, but the app still answered: nothing else ran
                status, detail = FAILED, outside
            elif maint_enabled is True or later_than_maintenance:
                status, detail = DONE, "maintenance mode was turned on" + proof.maintenance_check_note(
                    ev.get("maintenance_check"))
            elif _failed(maint):
                status, detail = FAILED, str(maint.get("msg") or "the change failed")
        elif sid == "backup":
            if backup.get("path"):
                detail = f"{backup['path']} verified at level {backup.get('level') or '?'}"
                # The backup role goes on after verifying (Render export, retention).
                if backup.get("finished", True) or _ran(ev.get("convert_plan")) or _ran(ev.get("convert")):
                    status = DONE
                else:
                    detail += ", but the backup step did not finish"
        elif sid == "convert":
            converted = ev.get("convert")
            if conv_state == "committed" and not _conversion_failed(converted):
                status, detail = DONE, conv_detail
            elif conv_state == "nothing to convert":
                status, detail = SKIPPED, conv_detail
            elif conv_state in ("rolled back", "unknown", "committed") or (
                    conv_state == "not started" and conv_detail != "not started"
                    and (_ran(converted) or _failed(ev.get("convert_plan")))):
                status, detail = FAILED, conv_detail
            elif conv_state == "planned":
                status, detail = CHECKED, conv_detail
        elif sid == "alembic_reset":
            result = ev.get("alembic")
            if _failed(result):
                status, detail = FAILED, str(result.get("msg") or "failed")
            elif _ran(result):
                stored = ", ".join(result.get("stored") or []) or "nothing"
                status = CHECKED if check_mode else DONE
                detail = (f"{stored} -> {result.get('revision')}" if result.get("changed")
                          else f"already {result.get('revision')}")
        elif sid == "deploy":
            result = ev.get("deploy")
            deploy = _get(result, "deploy", default={})
            if _ran(result) and check_mode:
                status, detail = CHECKED, "would deploy"
            elif _ran(result) and deploy.get("status") == "live" and not result.get("failed"):
                status, detail = DONE, f"deploy {deploy.get('id')} is live"
            elif _ran(result) and deploy.get("id"):
                status, detail = FAILED, f"deploy {deploy['id']} ended {deploy.get('status') or 'unknown'}"
            elif _ran(result):  # no deploy to name: Render's answer (an API error, a timeout) says why
                status, detail = FAILED, str(result.get("msg") or "the deploy could not be started")
        elif sid == "maintenance_off":
            if maint_enabled is False:
                status, detail = DONE, "maintenance mode is off"
            elif _failed(maint) and (needed is False or conv_state in ("committed", "nothing to convert")):
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
        return DONE, (f"leaked users {_names(rotation.get('deleted_users') or [])} deleted; "
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
    if _failed(maint):
        return "unknown: the last change failed (look at the Render dashboard)"
    if _ran(maint):
        enabled = _get(maint, "maintenance_mode", "enabled")
        if enabled is True:
            return "ON"
        if enabled is False:
            return "off"
    return "not changed by this run"


def _backup_figures(ev: dict, manifest_sha256: str | None) -> dict:
    backup = ev.get("backup") or {}
    manifest = backup.get("manifest") or {}
    path = backup.get("path") or backup.get("gate_path")
    return {
        "path": path,
        "verified_level": backup.get("level"),
        "gate_path": backup.get("gate_path"),
        "manifest_sha256": manifest_sha256,
        "manifest_checksum": manifest.get("manifest_checksum"),
        "finished_at": manifest.get("finished_at"),
        "total_bytes": manifest.get("total_bytes"),
        "rows": manifest.get("rows"),
        "tables": manifest.get("tables"),
    }


def _rehearsal_figures(rehearsal) -> dict | None:
    """What the conversion's rehearsal on a scratch restore measured (None: not rehearsed)."""
    if not isinstance(rehearsal, dict) or rehearsal.get("rehearsed") not in (True, "True", "true"):
        return None
    return {k: rehearsal.get(k) for k in ("backup", "seconds", "exclusive_lock_seconds", "restore_seconds",
                                          "locale", "live_locale")}


def _figures(ev: dict, manifest_sha256: str | None) -> dict:
    findings = ev.get("findings") or {}
    alembic_found = findings.get("alembic") or {}
    conv, plan = ev.get("convert"), ev.get("convert_plan")
    conv = conv if _ran(conv) else {}
    plan = plan if _ran(plan) else {}
    reset = ev.get("alembic") if _ran(ev.get("alembic")) else {}
    deploy_result = ev.get("deploy") if _ran(ev.get("deploy")) else {}
    deploy = deploy_result.get("deploy") or {}
    health = ev.get("health") if _ran(ev.get("health")) else {}
    logs = ev.get("logs") if _ran(ev.get("logs")) else {}
    timings = conv.get("timings") or {}
    committed = bool(conv.get("changed")) and (not _conversion_failed(conv) or bool(conv.get("post_commit_errors")))
    return {
        "foreign_keys": {
            "at_investigation": _get(findings, "foreign_keys", "count"),
            "before": conv.get("fk_count_before", plan.get("fk_count_before")),
            "after": conv.get("fk_count_after") if committed else None,
        },
        "columns_to_convert": len(findings.get("columns_to_convert") or []) if findings else None,
        "columns_converted": len(conv.get("columns_converted") or []) if committed else 0,
        "tables_rewritten": len(conv.get("tables_rewritten") or []) if committed else 0,
        "exclusive_lock_seconds": timings.get("exclusive_lock"),
        "timings": {k: v for k, v in timings.items() if isinstance(v, int | float)},
        "backup": _backup_figures(ev, manifest_sha256),
        "rehearsal": _rehearsal_figures(ev.get("rehearsal")),
        "alembic": {
            "stored": alembic_found.get("stored", reset.get("stored")),
            "true": alembic_found.get("true", reset.get("revision")),
            "head": alembic_found.get("head"),
            "set_to": reset.get("revision"),
            "pending": reset.get("pending", alembic_found.get("pending")),
        },
        "deploy": {
            "id": deploy.get("id"),
            "status": deploy.get("status"),
            "commit": _get(deploy, "commit", "id"),
            "created_at": deploy.get("createdAt"),
            "finished_at": deploy.get("finishedAt"),
        },
        "health": {
            "status": health.get("status"),
            "url": health.get("url"),
            "log_lines_checked": logs.get("lines_checked") if logs else None,
        },
    }


def assemble_run_report(evidence: dict, *, environment: str, host: str, run_id: str,
                        started_at: str | None, ended_at: str, check_mode: bool = False,
                        failure: dict | None = None, protected_environments=("production",),
                        manifest_sha256: str | None = None, secrets=(), inventory: str = "") -> dict:
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
            "database_changed": conv_state == "committed" or (_ran(reset) and bool(reset.get("changed"))
                                                               and not check_mode),
            "restore_from": (ev.get("backup") or {}).get("path") or (ev.get("backup") or {}).get("gate_path"),
        },
        "figures": _figures(ev, manifest_sha256),
        # The gates a protected environment met, and the schema this run started and ended
        # with: a later production run's staging-first gate compares its schema with these.
        "gates": [g for g in _get(ev, "gates", "gates", default=[]) or [] if isinstance(g, dict)],
        "schema_fingerprint": _get(ev, "gates", "schema_fingerprint"),
        "schema_fingerprint_after": _get(ev, "schema_after", "schema_fingerprint"),
        # What the operator must do after a rotation (e.g. update the vault): names, never values.
        "rotation_actions": [str(a) for a in _get(ev, "rotation", "actions", default=[]) or []],
        # What the post-deploy proof asked the app and what it answered (never a header value).
        "proof": proof.proof_section(ev),
    }
    report["duration_seconds"] = _seconds_between(report["started_at"], ended_at)
    report["next_action"] = next_action(report, environment, list(protected_environments or []), inventory)
    return redact(report, secrets)


def render_run_markdown(report: dict) -> str:
    r, fig = report, report["figures"]
    outcome = {"succeeded": "succeeded", "checked": "check mode, nothing changed",
               "failed": f"FAILED at step {r['stopped_at']}"}[r["outcome"]]
    duration = f" ({r['duration_seconds']:.0f} s)" if r.get("duration_seconds") is not None else ""
    lines = [f"# Recovery run: {r['environment']} ({r['host']})", "",
             f"Run `{r['run_id']}`, started {r['started_at'] or 'unknown'}, ended {r['ended_at']}{duration}.", "",
             f"**Outcome: {outcome}**", "",
             f"Render: {r.get('render_detail') or ('used' if r['render'] else RENDER_OFF)}.", "",
             *([f"Where the recovery stood at the start: {r['resume']['summary']}.", ""]
               if (r.get("resume") or {}).get("summary") else []),
             "## Next action", "", *[f"- {line}" for line in r["next_action"]], ""]
    if r["failure"]:
        lines += ["## Where it stopped", "",
                  f"- task: {r['failure'].get('task', 'unknown')}",
                  f"- message: {r['failure'].get('message', '(none recorded)')}", ""]
    state = r["state"]
    lines += ["## State left", ""]
    lines += _table(["what", "state"], [
        ("maintenance mode", state["maintenance_mode"]),
        ("key conversion", state["conversion_detail"]),
        ("database changed by this run", "yes" if state["database_changed"] else "no"),
        ("backup to restore from", state["restore_from"] or "none in this run"),
    ])
    if r.get("gates"):
        lines += ["## Gates", ""]
        lines += _table(["gate", "status", "detail"], [(g.get("gate"), g.get("status"), g.get("message"))
                                                        for g in r["gates"]])
    lines += ["## Steps", ""]
    lines += _table(["step", "status", "detail"], [(s["title"], s["status"], s["detail"]) for s in r["steps"]])

    fks, backup, alembic = fig["foreign_keys"], fig["backup"], fig["alembic"]
    deploy, health = fig["deploy"], fig["health"]

    def show(value):
        return "n/a" if value is None or value == [] else value

    lines += ["## Key figures", "",
              f"- foreign keys: {show(fks['at_investigation'])} at the investigation; "
              f"before the conversion {show(fks['before'])}, after {show(fks['after'])}",
              f"- columns converted: {fig['columns_converted']} of {show(fig['columns_to_convert'])} found; "
              f"tables rewritten: {fig['tables_rewritten']}",
              "- exclusive lock held: " + (f"{fig['exclusive_lock_seconds']} s" if fig["exclusive_lock_seconds"]
                                           is not None else "n/a"),
              *([f"- rehearsal on a scratch restore: the conversion took {fig['rehearsal']['seconds']} s there "
                 f"(exclusive lock {show(fig['rehearsal']['exclusive_lock_seconds'])} s): expect about as long"]
                if fig.get("rehearsal") else []),
              f"- backup: {show(backup['path'])}, verified at level {show(backup['verified_level'])}",
              f"  - manifest.json sha256: `{show(backup['manifest_sha256'])}`; "
              f"manifest_checksum: `{show(backup['manifest_checksum'])}`",
              f"- alembic: stored `{', '.join(alembic['stored'] or []) or 'nothing'}` -> true "
              f"`{show(alembic['true'])}` -> head `{show(alembic['head'])}`; set to `{show(alembic['set_to'])}`; "
              f"pending for the deploy: {', '.join(alembic['pending'] or []) or 'none'}",
              f"- deploy: {show(deploy['id'])} {show(deploy['status'])} (commit {show(deploy['commit'])})",
              f"- health: {show(health['status'])}"
              + (f" from {health['url']}" if health["url"] else "")
              + (f"; {health['log_lines_checked']} log lines checked" if health["log_lines_checked"] is not None
                 else ""),
              "", *proof.proof_markdown(r.get("proof"))]
    return "\n".join(lines).rstrip() + "\n"


# ----------------------------------------------------------------------------- scheduled verification

def _fk_key(fk: dict) -> str:
    return f"{fk.get('schema')}.{fk.get('table')}.{fk.get('name')}"


def conversion_record(run_id: str, *, conversion: dict | None = None, run_report: dict | None = None,
                      findings: dict | None = None) -> dict | None:
    """What a run recorded of a successful conversion, or None: the FK count after it,
    the FKs by name (from that run's findings: the conversion keeps every FK's name),
    and the Alembic revision the schema was at."""
    count = None
    source = None
    if isinstance(conversion, dict) and conversion.get("changed") and not conversion.get("failed") \
            and conversion.get("finished", True) and not conversion.get("post_commit_errors") \
            and not (conversion.get("msg") and "columns_converted" not in conversion) \
            and isinstance(conversion.get("fk_count_after"), int):
        count, source = conversion["fk_count_after"], "conversion.json"
    elif isinstance(run_report, dict):
        steps = {s.get("id"): s.get("status") for s in run_report.get("steps") or []}
        after = _get(run_report, "figures", "foreign_keys", "after")
        if steps.get("convert") == DONE and isinstance(after, int):
            count, source = after, "run-report.json"
    if count is None:
        return None
    names = None
    revision = None
    if isinstance(findings, dict):
        listed = _get(findings, "foreign_keys", "list")
        if isinstance(listed, list) and len(listed) == count:
            names = sorted(_fk_key(fk) for fk in listed)
        revision = _get(findings, "alembic", "true")
    if revision is None and isinstance(run_report, dict):
        revision = _get(run_report, "figures", "alembic", "set_to") or _get(run_report, "figures", "alembic", "true")
    return {"name": f"the conversion of run {run_id}", "run_id": run_id, "at": run_id_time(run_id),
            "source": source, "fk_count": count, "fk_names": names, "revision": revision}


def verify_record(name: str, report: dict | None) -> dict | None:
    """A clean verification's snapshot (its FKs and revision), or None."""
    if not isinstance(report, dict) or report.get("kind") != "verify-report" or report.get("result") != OK:
        return None
    snapshot = report.get("snapshot") or {}
    if not isinstance(snapshot.get("fk_count"), int) or not isinstance(snapshot.get("fk_names"), list):
        return None
    return {"name": f"the clean verification {name}", "run_id": name, "at": report.get("generated_at"),
            "source": f"{name}.json", "fk_count": snapshot["fk_count"], "fk_names": snapshot["fk_names"],
            "revision": snapshot.get("revision")}


def newest_baseline(*records) -> dict | None:
    """The newest known-good record: a successful conversion or a clean verification."""
    found = [r for r in records if r]
    return max(found, key=lambda r: r.get("at") or "") if found else None


def compare_foreign_keys(baseline: dict | None, findings: dict, *, accept: bool = False) -> dict:
    """The FK check against the newest known-good record. Every recorded FK must still be
    there; more FKs are expected only once migrations moved alembic_version on (stored =
    the true revision, another than recorded). accept: take the current FKs as the new
    baseline (after a migration that drops an FK on purpose)."""
    fks = findings.get("foreign_keys") or {}
    count = fks.get("count")
    now_names = {_fk_key(fk) for fk in fks.get("list") or []}
    if baseline is None:
        return {"status": INFO, "summary": f"{count} FKs; no successful conversion or clean verification is "
                                           "recorded under the reports directory, so nothing to compare with",
                "details": {"count": count}}
    where = baseline["name"]
    alembic = findings.get("alembic") or {}
    stored = alembic.get("stored") or []
    moved_on = (baseline.get("revision") is not None and bool(alembic) and stored == [alembic.get("true")]
                and stored != [baseline["revision"]])
    details = {"count": count, "recorded": baseline["fk_count"], "recorded_in": baseline["run_id"],
               "source": baseline["source"], "recorded_revision": baseline.get("revision"),
               "migrations_since": moved_on}
    head = f"{count} FKs, {baseline['fk_count']} recorded at {where}"
    since = (f"by the migrations since ({baseline.get('revision')} -> {', '.join(stored)})" if moved_on
             else "with no migration since")
    if baseline.get("fk_names") is not None:
        recorded = set(baseline["fk_names"])
        missing, added = sorted(recorded - now_names), sorted(now_names - recorded)
        details |= {"missing": missing, "added": added}
        if not missing and not added:
            return {"status": OK, "details": details, "summary": f"{count} FKs, as recorded at {where}"}
        change = "; ".join(part for part in (
            f"{len(missing)} gone: {_names(missing)}" if missing else "",
            f"{len(added)} added {since}: {_names(added)}" if added else "") if part)
        if accept:
            return {"status": OK, "details": details | {"accepted": True},
                    "summary": f"{head}; accepted as the new baseline: {change}"}
        if missing or not moved_on:
            return {"status": DRIFT, "details": details, "summary": f"{head}; {change}"}
        return {"status": OK, "details": details, "summary": f"{head}; {change}"}
    if count == baseline["fk_count"]:
        return {"status": OK, "details": details, "summary": f"{count} FKs, as recorded at {where}"}
    if accept:
        return {"status": OK, "details": details | {"accepted": True},
                "summary": f"{head}; accepted as the new baseline"}
    if count > baseline["fk_count"] and moved_on:
        return {"status": OK, "details": details, "summary": f"{head}; the others added {since}"}
    return {"status": DRIFT, "details": details, "summary": f"{head}; changed {since}"}


def _error(result, what: str) -> str:
    msg = result.get("msg") if isinstance(result, dict) else None
    return f"{what} failed: {msg or 'no result'}"


def assemble_verify_report(evidence: dict, *, environment: str, host: str, generated_at: str,
                           baseline: dict | None, render_configured: bool, expected_key_type: str = "",
                           accept_foreign_keys: bool = False, secrets=(), inventory: str = "") -> dict:
    """The verification report; evidence keys: findings (pg_recovery_findings result),
    findings_error (why it was not run), plan (pg_convert_keys check-mode result), gate
    (pg_backup_gate result), service (render_service result), health (uri result)."""
    ev = dict(evidence or {})
    checks = []

    def add(check_id, title, status, summary, details=None):
        checks.append({"id": check_id, "title": title, "status": status, "summary": summary,
                       "details": details or {}})

    result = ev.get("findings")
    findings = result.get("findings") if isinstance(result, dict) else None
    if ev.get("findings_error"):
        problem = ev["findings_error"]
    elif not isinstance(findings, dict):
        problem = _error(result, "the investigation")
    else:
        problem = None
    if problem:
        for check_id, title in (("key_types", "Key column types"), ("foreign_keys", "Foreign keys"),
                                ("alembic", "alembic_version")):
            add(check_id, title, ERROR, problem)
    else:
        to_convert = [c.get("qualified") for c in findings.get("columns_to_convert") or []]
        target = expected_key_type or findings.get("expected_key_type") or "the expected type"
        if findings.get("conversion_needed"):
            add("key_types", "Key column types", DRIFT,
                f"{len(to_convert)} key or FK-linked column(s) are not {target}: {_names(to_convert)}",
                {"columns": to_convert})
        else:
            add("key_types", "Key column types", OK, f"every key and FK-linked column is {target}")
        fk_check = compare_foreign_keys(baseline, findings, accept=accept_foreign_keys)
        add("foreign_keys", "Foreign keys", fk_check["status"], fk_check["summary"], fk_check["details"])
        alembic = findings.get("alembic")
        if not alembic:
            where = ev.get("alembic_versions_dir") or ""
            add("alembic", "alembic_version", ERROR,
                "cannot verify: no Alembic revision map ("
                + (f"{where} is not a directory" if where else "no versions directory given")
                + "; set investigate_alembic_versions_dir, or APP_CHECKOUT, to the deployed app's migrations/versions)")
        else:
            stored = alembic.get("stored") or []
            details = {k: alembic.get(k) for k in ("stored", "true", "head", "pending", "contradictions")}
            shown = ", ".join(stored) or "nothing"
            if alembic.get("contradictions"):
                add("alembic", "alembic_version", DRIFT,
                    "the schema contradicts the Alembic history: " + "; ".join(alembic["contradictions"]), details)
            elif stored != [alembic.get("true")]:
                add("alembic", "alembic_version", DRIFT,
                    f"alembic_version holds {shown} but the schema is at {alembic.get('true')}", details)
            elif alembic.get("true") != alembic.get("head"):
                add("alembic", "alembic_version", DRIFT,
                    f"alembic_version and the schema are at {alembic.get('true')}, not head {alembic.get('head')}: "
                    f"pending {', '.join(alembic.get('pending') or [])} (the last deploy did not migrate)", details)
            else:
                add("alembic", "alembic_version", OK, f"{shown}: the true revision and head", details)

    plan = ev.get("plan")
    if not isinstance(plan, dict) or "plan" not in plan:
        add("conversion_plan", "convert_keys plan (check mode)", ERROR, _error(plan, "planning the conversion"))
    else:
        columns = [c.get("qualified") if isinstance(c, dict) else str(c)
                   for c in _get(plan, "plan", "columns", default=[])]
        refusals = _get(plan, "plan", "refusals", default=[])
        if columns:
            add("conversion_plan", "convert_keys plan (check mode)", DRIFT,
                f"convert_keys would convert {len(columns)} column(s): {_names(columns)}",
                {"columns": columns, "refusals": refusals})
        elif plan.get("failed"):
            add("conversion_plan", "convert_keys plan (check mode)", ERROR, _error(plan, "planning the conversion"))
        else:
            add("conversion_plan", "convert_keys plan (check mode)", OK, "nothing to convert")

    gate = ev.get("gate")
    if isinstance(gate, dict) and gate.get("path") and not gate.get("failed"):
        backup = gate.get("backup") or {}
        add("backup", "Newest verified backup (gate rules, report only)", OK,
            f"{gate['path']} passes the gate: verified at level {gate.get('level')}, "
            f"finished {backup.get('finished_at')}",
            {"path": gate["path"], "level": gate.get("level"), "finished_at": backup.get("finished_at"),
             "manifest_checksum": backup.get("manifest_checksum"), "refused": gate.get("refused") or []})
    else:
        refused = gate.get("refused") if isinstance(gate, dict) else None
        msg = str(gate.get("msg") or "") if isinstance(gate, dict) else ""
        why = "; ".join((refused or [])[:3]) or (
            msg if msg and not msg.startswith("no verified backup") else "no backup of this database was found")
        add("backup", "Newest verified backup (gate rules, report only)", WARN,
            f"no backup passes the gate now, so a risky change would be refused ({why}). "
            f"Take one: ansible-playbook playbooks/backup.yml {inventory_option(inventory)}",
            {"refused": refused or [], "message": gate.get("msg") if isinstance(gate, dict) else None})

    if not render_configured:
        for check_id, title in (("maintenance", "Maintenance mode"), ("health", "Service health")):
            add(check_id, title, "skipped", RENDER_OFF)
    else:
        service = ev.get("service")
        details = _get(service, "service", "serviceDetails", default=None)
        if not isinstance(details, dict) or _failed(service):
            add("maintenance", "Maintenance mode", ERROR, _error(service, "reading the Render service"))
        elif _get(details, "maintenanceMode", "enabled"):
            add("maintenance", "Maintenance mode", DRIFT, "maintenance mode is ON: the app answers 503")
        else:
            add("maintenance", "Maintenance mode", OK, "off")
        health = ev.get("health")
        if not _ran(health):
            add("health", "Service health", ERROR, "the health check did not run (no service URL)")
        elif health.get("status") == 200:
            add("health", "Service health", OK, f"{health.get('url')} answered 200", {"url": health.get("url")})
        else:
            add("health", "Service health", DRIFT,
                f"{health.get('url')} answered {health.get('status') or 'nothing'}"
                + (f" ({health.get('msg')})" if health.get("status", -1) in (-1, None) and health.get("msg") else ""),
                {"url": health.get("url"), "status": health.get("status")})

    failing = [c for c in checks if c["status"] in FAILING]
    report = {
        "kind": "verify-report",
        "version": REPORT_VERSION,
        "environment": environment,
        "host": host,
        "generated_at": generated_at,
        "result": "ok" if not failing else ("error" if all(c["status"] == ERROR for c in failing) else "drift"),
        "checks": checks,
        "drifts": [f"{c['title']}: {c['summary']}" for c in failing],
        "baseline": baseline and {k: v for k, v in baseline.items() if k != "fk_names"},
        # What the next verification compares with, when this one is clean.
        "snapshot": {
            "fk_count": _get(findings, "foreign_keys", "count") if isinstance(findings, dict) else None,
            "fk_names": sorted(_fk_key(fk) for fk in _get(findings, "foreign_keys", "list", default=[]))
            if isinstance(findings, dict) else None,
            "revision": (_get(findings, "alembic", "stored") or [None])[0] if isinstance(findings, dict) else None,
        },
    }
    return redact(report, secrets)


def verify_summary(report: dict, report_path: str = "") -> str:
    """One message for the failing task (and so the timer's or AWX's alert)."""
    if report["result"] == "ok":
        return f"{report['environment']}: no drift" + (f"; report {report_path}" if report_path else "")
    return (f"{report['environment']}: {len(report['drifts'])} check(s) failed: "
            + " | ".join(report["drifts"]) + (f". Report: {report_path}" if report_path else ""))


def render_verify_markdown(report: dict) -> str:
    r = report
    result = {"ok": "OK, no drift", "drift": "DRIFT", "error": "ERROR, could not verify"}[r["result"]]
    lines = [f"# Verification: {r['environment']} ({r['host']})", "",
             f"Generated {r['generated_at']}. Read-only.", "",
             f"**Result: {result}**", ""]
    if r["drifts"]:
        lines += ["## What failed", "", *[f"- {d}" for d in r["drifts"]], ""]
    lines += ["## Checks", ""]
    lines += _table(["check", "status", "summary"], [(c["title"], c["status"], c["summary"]) for c in r["checks"]])
    baseline = r.get("baseline")
    lines += ["## Baseline", "",
              (f"Foreign keys compared with {baseline['name']} ({baseline['source']}): "
               f"{baseline['fk_count']} FKs at revision `{baseline['revision']}`." if baseline
               else "No successful conversion or clean verification recorded: foreign keys only reported."), ""]
    return "\n".join(lines).rstrip() + "\n"


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def is_run_dir_name(name: str) -> bool:
    """A run's report folder (not a verify-* report, not a hidden file)."""
    return bool(_SAFE_NAME.match(name)) and not name.startswith("verify-")
