"""run-report.md: the run report as Markdown. Pure, like run_report.py."""

from __future__ import annotations

from ansible.module_utils import app_proof_report as proof
from ansible.module_utils.run_report_common import RENDER_OFF, md_table


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
    lines += md_table(["what", "state"], [
        ("maintenance mode", state["maintenance_mode"]),
        ("key conversion", state["conversion_detail"]),
        ("database changed by this run", "yes" if state["database_changed"] else "no"),
        ("backup to restore from", state["restore_from"] or "none in this run"),
    ])
    if r.get("gates"):
        lines += ["## Gates", ""]
        lines += md_table(["gate", "status", "detail"], [(g.get("gate"), g.get("status"), g.get("message"))
                                                        for g in r["gates"]])
    lines += ["## Steps", ""]
    lines += md_table(["step", "status", "detail"], [(s["title"], s["status"], s["detail"]) for s in r["steps"]])

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
