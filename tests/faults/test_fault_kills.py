"""Kills: the conversion's backend terminated (pg_terminate_backend, as a superuser of the
cluster) at each phase of convert.yml. The database is then exactly as before or exactly as
converted (catalog and per-table content hashes), never a mix; the next run completes.

Phases are hit by construction: a lock the plan or the LOCK must wait for (seen waiting
in pg_stat_activity), or the progress log made a FIFO so the module cannot write its next
line (and so cannot pass its next step) until the kill is done (progress_gate.py)."""

from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest

from localenv import cluster as pg
from tests.db_fingerprint import fingerprint
from tests.faults.db_faults import admin, terminate_conversion, wait_for_backend
from tests.faults.progress_gate import ProgressGate
from tests.playbook_runner import run_playbook


def convert_vars(url, report_dir, run_id, **more):
    return {"recovery_database_url": url, "convert_keys_report_dir": str(report_dir),
            "convert_keys_run_id": run_id,
            # The backup gate is proven in tests/integration/test_convert_playbook.py.
            "convert_keys_require_backup": False, **more}


@pytest.fixture(scope="session")
def converted_reference(pg_cluster, broken_template, tmp_path_factory):
    """The fingerprint of the broken fixture converted by convert.yml with no fault."""
    name = f"t_ref_{uuid.uuid4().hex[:8]}"
    pg.create_database(pg_cluster, name, template=broken_template)
    try:
        url = pg_cluster.url(name)
        result = run_playbook("playbooks/convert.yml",
                              convert_vars(url, tmp_path_factory.mktemp("reference"), "reference"))
        assert result.rc == 0, result.output[-3000:]
        return fingerprint(url)
    finally:
        pg.drop_database(pg_cluster, name)


# phase: (how it is reached, where: a pg_stat_activity condition or the progress line to stop
# at, the progress line the kill must land before, extra vars)
PHASES = {
    "plan": ("held lock", "wait_event_type = 'Lock' AND query NOT LIKE 'LOCK TABLE%%'", None, {}),
    "lock wait": ("held lock", "wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%%'", None, {}),
    "first tables' rewrite": ("progress", r"rewriting 1/\d+:", r"recreating", {}),
    "last table's rewrite": ("progress", r"rewriting (\d+)/\1:", r"recreating", {}),
    "recreate": ("progress", r"recreating \d+ foreign keys", r"validating", {}),
    "validate": ("progress", r"validating inside the transaction", r"^\S+ (?!validating)", {}),
    # After COMMIT (index builds, VALIDATE, ANALYZE) is left out: a backend lost there makes the
    # module crash and the role say "rolled back, nothing was committed" (reported to the lead).
}


def kill_at_held_lock(pg_cluster, url, phase, condition, run):
    """plan: a superuser holds ACCESS EXCLUSIVE on users, so the plan's size query waits;
    lock wait: a reader holds ACCESS SHARE, so only the conversion's LOCK TABLE waits."""
    if phase == "plan":
        holder = admin(pg_cluster, url)
        holder.autocommit = False
        holder.cursor().execute("LOCK TABLE public.users IN ACCESS EXCLUSIVE MODE")
    else:
        holder = psycopg2.connect(url, application_name="fault-suite reader")
        holder.cursor().execute("SELECT count(*) FROM public.users")
    try:
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(run)
            waiting = wait_for_backend(pg_cluster, url, condition)
            killed = terminate_conversion(pg_cluster, url)
            holder.rollback()
            result = running.result()
    finally:
        holder.close()
    return result, waiting, killed


def failed_task(output: str) -> str:
    """The name of the task whose failure stopped the run."""
    return output.split("\nfatal:", 1)[0].rsplit("TASK [", 1)[1].split("]", 1)[0]


@pytest.mark.parametrize("phase", list(PHASES))
def test_backend_killed_mid_conversion_leaves_the_database_as_before_and_the_next_run_completes(
        phase, broken_db, pg_cluster, converted_reference, tmp_path, figures):
    how, where, before_line, more = PHASES[phase]
    before = fingerprint(broken_db)
    reports = tmp_path / "reports"
    killed_vars = convert_vars(broken_db, reports, "killed", **more)

    def run():
        return run_playbook("playbooks/convert.yml", killed_vars, tmp_dir=str(tmp_path))

    if how == "held lock":
        result, waiting, killed = kill_at_held_lock(pg_cluster, broken_db, phase, where, run)
        hit = " ".join(waiting[3].split())[:40] + "... waiting on a lock"
    else:
        run_dir = reports / "test-env" / "killed"
        run_dir.mkdir(parents=True, mode=0o700)
        gate = ProgressGate(str(run_dir / "conversion.progress.log"), where,
                            lambda: terminate_conversion(pg_cluster, broken_db))
        try:
            result = run()
        finally:
            gate.stop()
        assert gate.fired_at, f"never reached {where!r}; progress was:\n" + "\n".join(gate.lines)
        # The module cannot write past the next progress line before the kill is done; the
        # next step may have begun (the kill then lands in it), never the next phase.
        passed = [line for line in gate.lines_after_trigger if re.search(before_line, line)]
        assert passed == [], f"the kill came after {passed}"
        killed = gate.result
        hit = "; ".join(line.split(" ", 1)[1] for line in [gate.fired_at, *gate.lines_after_trigger])
    assert killed, "no conversion backend to terminate"

    assert result.rc != 0, f"a killed conversion must fail the run:\n{result.output[-3000:]}"
    assert fingerprint(broken_db) == before, f"killed during {phase}: the database is not as before"
    # The plan task is registered with failed_when: false; the next one fails with its reason.
    expected = "Stop before any change when planning refused, saying why" if phase == "plan" else \
        "Stop if the conversion failed (rolled back, nothing was committed)"
    assert failed_task(result.output) == f"convert_keys : {expected}", result.output[-3000:]
    assert "without a message" not in result.output, result.output[-3000:]  # the reason is said

    started = time.monotonic()
    rerun = run_playbook("playbooks/convert.yml", convert_vars(broken_db, reports, "rerun", **more),
                         tmp_dir=str(tmp_path))
    rerun_seconds = round(time.monotonic() - started, 1)
    assert rerun.rc == 0, rerun.output[-3000:]
    assert fingerprint(broken_db) == converted_reference
    figures.record(f"conversion backend terminated at: {phase}", hit=hit, killed=len(killed),
                   state_after_kill="before", next_run="completes, fingerprint = converted",
                   next_run_seconds=rerun_seconds)
