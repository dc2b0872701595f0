"""Where a recovery stands, so that a re-run resumes instead of saying "nothing to do".

A recovery is done only when three things hold, in this order:
  1. the schema is converted (the investigation finds nothing to convert),
  2. alembic_version holds the head revision (the deploy's migrations ran),
  3. the service's newest deploy is live (and, checked afterwards, healthy).
A run resumes from the first of them that is false. playbooks/recover.yml decides its
steps with resume_state() (through the recovery_resume_state filter) and the run
report reads the same dict, so the two never disagree.
"""

from __future__ import annotations

CONDITIONS = (
    ("schema_converted", "the schema is converted"),
    ("alembic_at_head", "alembic_version holds the head revision"),
    ("deploy_live", "the newest deploy is live"),
)


def _yes_no(value) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def resume_state(findings, newest_deploy, uses_render: bool) -> dict:
    """The recovery's state before this run acts.

    findings: the investigation's findings (conversion_needed, alembic {stored, true,
    head, matches}); newest_deploy: the service's newest deploy as Render lists it (None
    when there is none or Render is not used)."""
    findings = findings if isinstance(findings, dict) else {}
    alembic = findings.get("alembic") or {}
    schema_converted = not findings.get("conversion_needed", False)
    alembic_true = bool(alembic.get("matches", True)) if alembic else True
    # Without the app's revision map the head is unknown: not a reason to act.
    alembic_at_head = (list(alembic.get("stored") or []) == [alembic["head"]]) if alembic.get("head") else None
    deploy_status = (newest_deploy or {}).get("status") if uses_render else None
    deploy_live = (deploy_status == "live") if uses_render else None
    state = {"schema_converted": schema_converted, "alembic_at_head": alembic_at_head, "deploy_live": deploy_live}
    resume_from = next((name for name, _ in CONDITIONS if state[name] is False), None)
    database_work = not schema_converted or not alembic_true
    # Migrations pending or a changed schema need a new deploy even when the newest is live.
    deploy_needed = database_work or alembic_at_head is False or deploy_live is False
    return {
        **state,
        "deploy_status": deploy_status,
        "deploy_id": (newest_deploy or {}).get("id") if uses_render else None,
        "resume_from": resume_from,
        # What this run has to do (the Render steps only when Render is used).
        "database_work": database_work,
        "deploy_needed": bool(uses_render and deploy_needed),
        "work": database_work or bool(uses_render and deploy_needed),
        "deploy_trigger": "always" if database_work or alembic_at_head is False else "unless_live",
        "summary": resume_summary(state, resume_from),
    }


def resume_summary(state: dict, resume_from: str | None) -> str:
    parts = [f"{text}: {_yes_no(state.get(name))}" for name, text in CONDITIONS]
    where = {"schema_converted": "the conversion", "alembic_at_head": "alembic_version and the deploy",
             "deploy_live": "the deploy"}.get(resume_from)
    return "; ".join(parts) + (f" -> resume at {where}" if where else " -> nothing left to do")

