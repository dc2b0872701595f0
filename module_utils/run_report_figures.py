"""The key figures of a run report: foreign keys, columns, the exclusive lock, the
backup, the rehearsal, alembic_version, the deploy and health, from what the roles'
public results hold (any of them missing). Pure, like run_report.py which calls it.
"""

from __future__ import annotations

from ansible.module_utils.run_report_common import dig, task_ran


def conversion_failed(result) -> bool:
    """convert_keys waits with failed_when: false, so a failed conversion shows as a
    message without the success fields (or with post-commit errors), not as failed."""
    return bool(result.get("failed")) or bool(result.get("post_commit_errors")) \
        or (bool(result.get("msg")) and "columns_converted" not in result)


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


def figures(ev: dict, manifest_sha256: str | None) -> dict:
    findings = ev.get("findings") or {}
    alembic_found = findings.get("alembic") or {}
    conv, plan = ev.get("convert"), ev.get("convert_plan")
    conv = conv if task_ran(conv) else {}
    plan = plan if task_ran(plan) else {}
    reset = ev.get("alembic") if task_ran(ev.get("alembic")) else {}
    deploy_result = ev.get("deploy") if task_ran(ev.get("deploy")) else {}
    deploy = deploy_result.get("deploy") or {}
    health = ev.get("health") if task_ran(ev.get("health")) else {}
    logs = ev.get("logs") if task_ran(ev.get("logs")) else {}
    timings = conv.get("timings") or {}
    committed = bool(conv.get("changed")) and (not conversion_failed(conv) or bool(conv.get("post_commit_errors")))
    return {
        "foreign_keys": {
            "at_investigation": dig(findings, "foreign_keys", "count"),
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
            "commit": dig(deploy, "commit", "id"),
            "created_at": deploy.get("createdAt"),
            "finished_at": deploy.get("finishedAt"),
        },
        "health": {
            "status": health.get("status"),
            "url": health.get("url"),
            "log_lines_checked": logs.get("lines_checked") if logs else None,
        },
    }
