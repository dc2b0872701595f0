"""The run report's next action: what the operator does now, as commands to paste.

Pure, like run_report.py (which calls next_action() once the report is assembled).
The commands are the caller's (the run_report role composes them from this project's
playbooks and the run's inventory): module_utils spells none of them, nor this project's
paths. ``commands`` maps COMMANDS to a command line; ``restore_path`` is the option that
names a backup, followed by its path; ``scheduling`` where the scheduling examples are.
"""

from __future__ import annotations

COMMANDS = ("recover", "reopen", "maintenance_on", "verify", "backup", "rotate", "restore", "restore_path",
            "scheduling")

# The post-deploy proof's steps: what the app failed, for the next action.
PROOF_FAILURES = {
    "health": "its health check (the health path or the frontend did not answer 200)",
    "smoke": "a smoke request (the run report's post-deploy proof names it; the cleanup requests ran, and any "
             "that failed left test data to remove by hand)",
    "logs": "its log check (a foreign-key violation, type error or traceback since the deploy: the run report "
            "names the line)",
}


def command_lines(commands) -> dict:
    """Each of COMMANDS as given, or a placeholder naming it when the caller gave none."""
    given = commands if isinstance(commands, dict) else {}
    return {name: str(given.get(name) or "").strip() or f"<the {name} command>" for name in COMMANDS}


def restore_command(commands: dict, path: str | None) -> str:
    """The restore command, naming the backup to restore when there is one."""
    return commands["restore"] + (f" {commands['restore_path']}{path}" if path else "")


def next_action(report: dict, commands: dict) -> list[str]:
    commands = command_lines(commands)
    recover, reopen, verify = commands["recover"], commands["reopen"], commands["verify"]
    backup_cmd = commands["backup"]
    state = report["state"]
    maintenance_on = state["maintenance_mode"] == "ON"
    restore = restore_command(commands, state["restore_from"])
    maint_line = ("Maintenance mode is still ON: the app answers 503 until it is turned off."
                  if maintenance_on else f"Maintenance mode: {state['maintenance_mode']}.")
    outcome, stopped = report["outcome"], report["stopped_at"]

    rotation_actions = [str(a) for a in report.get("rotation_actions") or []]
    if outcome == "checked":
        return ["Check mode: nothing was changed. Run without --check to recover: " + recover]
    if outcome == "succeeded":
        resume = report.get("resume") or {}
        without_render = ([] if report["render"] else [
            "Render is not used by this run (recovery_render: false): it turned no maintenance mode on or off, "
            "deployed nothing, checked no health and rotated no credential. Deploy the app now (its pre-deploy "
            "runs `alembic upgrade head`), check it answers, and rotate leaked credentials: "
            + commands["rotate"]])
        if state["database_changed"] or resume.get("work"):
            lines = ["Recovered." if state["database_changed"] or not resume.get("resume_from") else
                     f"Recovered: this run resumed where an earlier one stopped ({resume.get('summary')})."]
            return [*lines, *without_render, *rotation_actions,
                    f"Take a verified backup of the converted schema: {backup_cmd}",
                    f"Schedule the verification (examples in {commands['scheduling']}): {verify}"]
        nothing = ("Nothing to do: the schema is converted, alembic_version holds the head revision and the "
                   "newest deploy is live." if report["render"] else
                   "Nothing to do in the database: the schema is converted and alembic_version is right.")
        return [nothing, *without_render, *rotation_actions, f"Keep the verification scheduled: {verify}"]

    cause = "Fix the cause above"
    if stopped == "investigate":
        return ["Nothing was changed (the investigation is read-only). "
                f"{cause} and re-run: {recover}"]
    if stopped == "maintenance_on":
        return ["The database was not changed. " + maint_line,
                f"{cause} and re-run: {recover}",
                f"Or reopen the app unchanged (its deploys keep failing): {reopen}"]
    if stopped == "backup":
        return ["The database was not changed: the conversion did not start. " + maint_line,
                f"{cause} (disk space, pg_dump version, scratch server) and re-run: {recover}",
                f"Or reopen the app unchanged (its deploys keep failing): {reopen}"]
    if stopped == "convert":
        conversion = state["conversion"]
        if conversion == "unknown":
            return ["The conversion did not finish in time and may still be running in the database: "
                    "look at pg_stat_activity before anything else. " + maint_line,
                    f"Once it has ended, re-run {recover}; or restore the backup taken before it: {restore}"]
        if conversion == "committed":
            return ["The conversion committed, but a step after its commit failed. " + maint_line,
                    f"{cause} and re-run: {recover}",
                    f"Or restore the backup taken before the conversion: {restore}"]
        return ["The database is as it was before this run (the conversion "
                + ("rolled back" if conversion == "rolled back" else "did not start") + "). " + maint_line,
                f"{cause} and re-run: {recover}",
                f"Or reopen the app unchanged (its deploys keep failing): {reopen}"]
    if stopped in ("alembic_reset", "deploy"):
        what = ("The keys are converted (committed)" if state["conversion"] == "committed"
                else "The database is unchanged by the conversion")
        return [f"{what}, but the app is not deployed. " + maint_line,
                f"{cause} and re-run: {recover} (it finds the conversion done and goes on)",
                f"Or restore the backup taken before the conversion: {restore}, then {reopen}"]
    if stopped == "maintenance_off":
        return ["Everything else is done, but maintenance mode could not be turned off: " + reopen,
                f"Then: {verify}"]
    if stopped == "rotation":
        return ["The app is recovered and healthy; the credential rotation stopped before deleting the leaked "
                "database users, so they still work (the run's output says which step and why).",
                f"{cause} and re-run: {commands['rotate']} (it reuses the user this run created)"]
    if stopped in PROOF_FAILURES:
        return [f"Maintenance mode is off and the deploy is live, but the app failed {PROOF_FAILURES[stopped]}: "
                "read the service's logs on Render.",
                f"If the app cannot serve: turn maintenance on ({commands['maintenance_on']}) and restore: "
                f"{restore}; or fix forward and re-run {recover}"]
    return [maint_line, f"{cause} and re-run: {recover}"]
