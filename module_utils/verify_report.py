"""The report of a scheduled verification (playbooks/verify.yml, roles/verify).

Pure: it takes the read-only probes' registered results (plain dicts, any of them
missing) and the newest known-good record, and returns dicts and Markdown. No I/O,
no Ansible. Every string passes through redact() with the run's secrets.
"""

from __future__ import annotations

import re

from ansible.module_utils.redaction import redact
from ansible.module_utils.run_id import run_id_time
from ansible.module_utils.run_report_common import (
    DONE,
    RENDER_OFF,
    REPORT_VERSION,
    dig,
    md_table,
    short_list,
    task_failed,
    task_ran,
)
from ansible.module_utils.run_report_next import command_lines

# Verification check statuses; drift and error make the verification fail.
OK, DRIFT, ERROR, WARN, INFO = "ok", "drift", "error", "warn", "info"
FAILING = (DRIFT, ERROR)


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
        after = dig(run_report, "figures", "foreign_keys", "after")
        if steps.get("convert") == DONE and isinstance(after, int):
            count, source = after, "run-report.json"
    if count is None:
        return None
    names = None
    revision = None
    if isinstance(findings, dict):
        listed = dig(findings, "foreign_keys", "list")
        if isinstance(listed, list) and len(listed) == count:
            names = sorted(_fk_key(fk) for fk in listed)
        revision = dig(findings, "alembic", "true")
    if revision is None and isinstance(run_report, dict):
        revision = dig(run_report, "figures", "alembic", "set_to") or dig(run_report, "figures", "alembic", "true")
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
            f"{len(missing)} gone: {short_list(missing)}" if missing else "",
            f"{len(added)} added {since}: {short_list(added)}" if added else "") if part)
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
                           accept_foreign_keys: bool = False, secrets=(), commands=None) -> dict:
    """The verification report; evidence keys: findings (pg_investigation result),
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
                f"{len(to_convert)} key or FK-linked column(s) are not {target}: {short_list(to_convert)}",
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
                   for c in dig(plan, "plan", "columns", default=[])]
        refusals = dig(plan, "plan", "refusals", default=[])
        if columns:
            add("conversion_plan", "convert_keys plan (check mode)", DRIFT,
                f"convert_keys would convert {len(columns)} column(s): {short_list(columns)}",
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
            f"Take one: {command_lines(commands)['backup']}",
            {"refused": refused or [], "message": gate.get("msg") if isinstance(gate, dict) else None})

    if not render_configured:
        for check_id, title in (("maintenance", "Maintenance mode"), ("health", "Service health")):
            add(check_id, title, "skipped", RENDER_OFF)
    else:
        service = ev.get("service")
        details = dig(service, "service", "serviceDetails", default=None)
        if not isinstance(details, dict) or task_failed(service):
            add("maintenance", "Maintenance mode", ERROR, _error(service, "reading the Render service"))
        elif dig(details, "maintenanceMode", "enabled"):
            add("maintenance", "Maintenance mode", DRIFT, "maintenance mode is ON: the app answers 503")
        else:
            add("maintenance", "Maintenance mode", OK, "off")
        health = ev.get("health")
        if not task_ran(health):
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
            "fk_count": dig(findings, "foreign_keys", "count") if isinstance(findings, dict) else None,
            "fk_names": sorted(_fk_key(fk) for fk in dig(findings, "foreign_keys", "list", default=[]))
            if isinstance(findings, dict) else None,
            "revision": (dig(findings, "alembic", "stored") or [None])[0] if isinstance(findings, dict) else None,
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
    lines += md_table(["check", "status", "summary"], [(c["title"], c["status"], c["summary"]) for c in r["checks"]])
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
