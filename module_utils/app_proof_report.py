"""The post-deploy proof in the run report: the steps health, smoke and logs, the
maintenance check's part of the maintenance_on step, and the report's ``proof`` section.

Pure, like run_report.py (which calls these): the evidence is what the app_deploy role
publishes in ``app_deploy_result`` (maintenance_check, health, frontend, smoke, logs),
any part missing. Statuses are returned as the words run_report.py maps to its own.
Everything shown was already redacted by the modules; run_report.py redacts again.
"""

from __future__ import annotations

DONE, FAILED, SKIPPED, CHECKED, PENDING = "done", "failed", "skipped", "checked", "pending"


def _given(result) -> bool:
    return isinstance(result, dict) and bool(result) and not result.get("skip_reason")


def _ok(result) -> bool:
    return bool(result.get("ok")) and not result.get("failed")


def maintenance_check_failure(check) -> str | None:
    """Why the maintenance_on step failed although Render switched it on: the public URL did
    not answer 503 from outside. None when the check passed, was planned, or did not run."""
    if not _given(check) or check.get("planned") or _ok(check):
        return None
    return (f"maintenance mode is on at Render, but {check.get('msg') or 'the public URL did not answer 503'}: "
            "the app still serves, so the run stopped before any database change")


def maintenance_check_note(check) -> str:
    """What the maintenance_on step adds when the check passed."""
    if _given(check) and _ok(check):
        return f"; seen from outside: {check.get('msg')}"
    return ""


def health_step(health, frontend) -> tuple[str, str]:
    """The health path and the frontend answer 200."""
    if not _given(health):
        return PENDING, ""
    if health.get("planned"):
        return CHECKED, str(health.get("msg") or "would check the health path")
    ok = _ok(health) or (health.get("ok") is None and health.get("status") == 200)
    if not ok:
        return FAILED, str(health.get("msg") or f"the health path answered {health.get('status', 'nothing')}")
    detail = str(health.get("msg") or f"{health.get('url')} answered 200")
    if _given(frontend) and not frontend.get("skipped"):
        if not _ok(frontend):
            return FAILED, f"frontend: {frontend.get('msg') or 'did not answer 200'}"
        detail += f"; frontend: {frontend.get('msg')}"
    return DONE, detail


def smoke_step(smoke) -> tuple[str, str]:
    if not _given(smoke):
        return PENDING, ""
    if smoke.get("skipped"):
        return SKIPPED, str(smoke.get("msg") or "no smoke requests configured")
    if smoke.get("planned") and not smoke.get("requests"):
        return CHECKED, f"would send {len(smoke['planned'])} requests"
    if not _ok(smoke):
        return FAILED, str(smoke.get("msg") or "the smoke requests failed")
    return DONE, str(smoke.get("msg") or "every smoke request answered as expected")


def logs_step(logs) -> tuple[str, str]:
    if not _given(logs):
        return PENDING, ""
    if logs.get("planned"):
        return CHECKED, str(logs.get("msg") or "would scan the logs")
    if not _ok(logs):
        return FAILED, str(logs.get("msg") or "the logs could not be scanned")
    return DONE, str(logs.get("msg") or f"{logs.get('lines_checked')} log lines checked")


def proof_section(ev: dict) -> dict:
    """The report's ``proof``: what each check asked and got; never a header value."""
    def pick(result, keys):
        return {k: result.get(k) for k in keys} if _given(result) else None

    probe = ("url", "status", "ok", "attempts", "msg")
    smoke = ev.get("smoke") if _given(ev.get("smoke")) else {}
    return {
        "maintenance_check": pick(ev.get("maintenance_check"), probe),
        "health": pick(ev.get("health"), probe),
        "frontend": pick(ev.get("frontend"), (*probe, "skipped")),
        "smoke": {
            "ok": smoke.get("ok"),
            "configured": bool(smoke) and not smoke.get("skipped"),
            "failed_request": smoke.get("failed_request"),
            "cleanup_failed": smoke.get("cleanup_failed") or [],
            "requests": [{k: r.get(k) for k in ("name", "phase", "method", "url", "expected", "status", "ok",
                                                "skipped", "msg")}
                         for r in smoke.get("requests") or [] if isinstance(r, dict)],
        } if smoke else None,
        "logs": pick(ev.get("logs"), ("ok", "lines_checked", "complete", "start", "minutes", "matched", "hits",
                                      "msg")),
    }


def proof_markdown(proof: dict) -> list[str]:
    """The run report's "Post-deploy proof" section (empty when no check ran)."""
    if not proof or not any(proof.values()):
        return []
    lines = ["## Post-deploy proof", ""]
    for key, title in (("maintenance_check", "maintenance mode from outside (503 expected)"),
                       ("health", "health path"), ("frontend", "frontend")):
        check = proof.get(key)
        if check:
            verdict = "ok" if check.get("ok") else ("not checked" if check.get("skipped") else "FAILED")
            lines.append(f"- {title}: {verdict}: {check.get('msg')}")
    smoke = proof.get("smoke")
    if smoke:
        if smoke["configured"]:
            lines.append(f"- smoke requests: {'ok' if smoke['ok'] else 'FAILED'}"
                         + (f" at '{smoke['failed_request']}'" if smoke.get("failed_request") else "")
                         + (f"; cleanup failed: {', '.join(smoke['cleanup_failed'])}" if smoke["cleanup_failed"]
                            else ""))
        else:
            lines.append("- smoke requests: none configured (app_deploy_smoke_requests)")
    logs = proof.get("logs")
    if logs:
        lines.append(f"- logs: {'ok' if logs.get('ok') else 'FAILED'}: {logs.get('msg')}")
    lines.append("")
    if smoke and smoke["requests"]:
        rows = [(r["phase"], r["name"], f"{r['method']} {r['url']}",
                 " or ".join(str(s) for s in r.get("expected") or []),
                 "not sent" if r.get("skipped") else (r.get("status") if r.get("status") is not None else "none"),
                 "ok" if r.get("ok") else ("skipped" if r.get("skipped") else "FAILED")) for r in smoke["requests"]]
        lines += ["| phase | request | sent | expected | answered | result |", "|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |"
                  for row in rows]
        lines.append("")
    for hit in (logs or {}).get("hits") or []:
        lines.append(f"- log line [{hit.get('timestamp')}] matching `{hit.get('pattern')}`: {hit.get('line')}")
    if (logs or {}).get("hits"):
        lines.append("")
    return lines
