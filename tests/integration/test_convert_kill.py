"""Killing ansible-playbook (its whole process group, SIGKILL) while convert.yml runs: at the
plan, in the middle of a table rewrite, and after COMMIT during the index builds. The
conversion dies with the run (no job outlives it, nothing in ~/.ansible_async, no module
process left), the database is as before or, killed after COMMIT, converted with the rest
recorded; the next run, started at once, completes, and the database then equals a twin
converted without interruption.

Each phase is hit deterministically, without sleeps: the plan waits on the run lock a test
session holds; the rewrite and the index build call an IMMUTABLE function that sleeps for as
long as a row of public.test_pause says (0 while the fixture is built and while the next run
runs), and the progress file or pg_stat_activity says when the run is in there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest

from tests.db_fingerprint import fingerprint
from tests.playbook_runner import BIN, INVENTORY, ROOT, run_playbook

pytestmark = pytest.mark.ansible

FIXTURE = """
CREATE TABLE test_pause (seconds float8 NOT NULL);
INSERT INTO test_pause VALUES (0);
CREATE FUNCTION slow_text(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN PERFORM pg_catalog.pg_sleep(seconds) FROM public.test_pause; RETURN t; END $$;
CREATE TABLE users (id uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id uuid PRIMARY KEY, user_id uuid NOT NULL REFERENCES users (id), note text);
INSERT INTO users SELECT md5('user ' || g)::uuid, 'user ' || g FROM generate_series(1, 20) g;
INSERT INTO orders SELECT md5('order of ' || u.name)::uuid, u.id, 'order of ' || u.name FROM users u;
CREATE INDEX users_slow_name ON users (slow_text(name));
"""
CONVERTED = "character varying(36)"
LONG_PAUSE = 600  # never reached: the run is killed, then the pause is lifted


def build(url: str) -> None:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(FIXTURE)
    conn.close()


def execute(url: str, statement: str, params=None):
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def pause(url: str, seconds: float) -> None:
    execute(url, "UPDATE test_pause SET seconds = %s", (seconds,))


def run_sessions(url: str) -> list:
    """Server sessions of a conversion module (plan, conversion, workers after COMMIT)."""
    return execute(url, "SELECT pid, application_name FROM pg_stat_activity WHERE datname = current_database() "
                        "AND (application_name = 'render-key-recovery' OR application_name LIKE 'key conversion%%') "
                        "AND pid <> pg_backend_pid()")


def wait_until(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def module_processes(remote_tmp: Path) -> list[int]:
    """Processes running a module copied to this test's remote tmp dir (AnsiballZ_...)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(remote_tmp) in cmdline and "State:\tZ" not in Path(f"/proc/{pid}/status").read_text():
            found.append(int(pid))
    return found


class Run:
    """convert.yml started as an operator would, in its own process group."""

    def __init__(self, work: Path, extra: dict):
        work.mkdir(parents=True, exist_ok=True)
        (work / "hosts.yml").write_text(INVENTORY.format(python=sys.executable))
        vars_file = work / "vars.json"
        vars_file.write_text(json.dumps(extra))
        vars_file.chmod(0o600)
        self.remote_tmp = work / "remote-tmp"
        self.async_dir = work / "async"
        self.log = open(work / "output.log", "w")  # noqa: SIM115 -- closed in kill()
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "ansible-playbook"), os.path.join(ROOT, "playbooks/convert.yml"),
             "-i", str(work / "hosts.yml"), "-e", f"@{vars_file}"],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                 "ANSIBLE_REMOTE_TMP": str(self.remote_tmp), "ANSIBLE_ASYNC_DIR": str(self.async_dir)})

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture
def twin_dbs(make_database, tmp_path):
    """(url, converted fingerprint): a database for the kill and the fingerprint of its
    twin converted without interruption."""
    url, twin = make_database(), make_database()
    build(url)
    build(twin)
    result = run_playbook("playbooks/convert.yml", extra_vars(twin, tmp_path / "twin"))
    assert result.rc == 0, result.output[-3000:]
    converted = fingerprint(twin)
    assert converted["types"]["public.users.id"] == converted["types"]["public.orders.user_id"] == CONVERTED
    return url, converted


def extra_vars(url: str, reports: Path, **more) -> dict:
    return {"recovery_database_url": url, "convert_keys_report_dir": str(reports),
            "convert_keys_require_backup": False, **more}


def killed_then_rerun(url: str, tmp_path: Path, at, **levers) -> dict:
    """Start convert.yml, kill its process group once ``at(run, progress)`` holds, check the
    conversion died with it, then run it again at once; the database's fingerprint after."""
    reports = tmp_path / "reports"
    run = Run(tmp_path / "killed", extra_vars(url, reports, **levers))
    try:
        wait_until(lambda: at(run, reports) or not run.alive(), "the phase to kill in")
        assert run.alive(), (tmp_path / "killed" / "output.log").read_text()[-3000:]
    finally:
        run.kill()
    # The conversion ends with the run: no module process left, its server sessions gone
    # (the server notices the closed connection within client_connection_check_interval).
    wait_until(lambda: not module_processes(run.remote_tmp), "the module's processes to go", timeout=10)
    started = time.monotonic()
    wait_until(lambda: not run_sessions(url), "the killed run's sessions to end", timeout=20)
    assert time.monotonic() - started < 10
    # No async job: nothing was written where async results go (~/.ansible_async by default).
    assert not run.async_dir.exists() or not any(run.async_dir.iterdir())
    return fingerprint(url)


def progress_says(text: str):
    def check(run, reports):
        return any(text in log.read_text() for log in reports.glob("*/*/conversion.progress.log"))
    return check


def test_killed_at_the_plan_nothing_changed_and_the_next_run_converts(twin_dbs, tmp_path):
    url, converted = twin_dbs
    before = fingerprint(url)
    holder = psycopg2.connect(url)
    holder.autocommit = True
    try:
        with holder.cursor() as cur:  # the run lock of a conversion: the plan waits for it
            cur.execute("SELECT pg_advisory_lock(%s)", (0x6B63_5F31,))
        after_kill = killed_then_rerun(url, tmp_path, lambda run, reports: run_sessions(url))
    finally:
        holder.close()
    assert after_kill == before
    rerun = run_playbook("playbooks/convert.yml", extra_vars(url, tmp_path / "reports"))
    assert rerun.rc == 0, rerun.output[-3000:]
    assert fingerprint(url) == converted


def test_killed_in_the_middle_of_a_rewrite_rolls_back_and_the_next_run_converts(twin_dbs, tmp_path):
    url, converted = twin_dbs
    before = fingerprint(url)
    pause(url, LONG_PAUSE)
    # The slow index is rebuilt inside the rewrite only when index builds stay in the
    # transaction (the default defers it to after COMMIT, where the next test kills it).
    after_kill = killed_then_rerun(url, tmp_path, progress_says("rewriting"),
                                   convert_keys_index_build="in_transaction")
    pause(url, 0)
    assert after_kill["types"] == before["types"] and after_kill["content"]["public.users"] == \
        before["content"]["public.users"]
    assert fingerprint(url) == before
    rerun = run_playbook("playbooks/convert.yml", extra_vars(url, tmp_path / "reports"))
    assert rerun.rc == 0, rerun.output[-3000:]
    assert "converted 3 columns in 2 tables" in rerun.output, rerun.output[-3000:]
    assert fingerprint(url) == converted


def test_killed_after_commit_the_next_run_finishes_the_index_build_and_says_so(twin_dbs, tmp_path):
    url, converted = twin_dbs
    pause(url, LONG_PAUSE)  # inside the transaction the index is dropped, not built: no pause there
    after_kill = killed_then_rerun(url, tmp_path, progress_says("CREATE INDEX CONCURRENTLY"),
                                   convert_keys_index_build="after_commit")
    pause(url, 0)
    # Committed: every column converted, the index build still recorded for the next run.
    assert after_kill["types"]["public.users.id"] == after_kill["types"]["public.orders.user_id"] == CONVERTED
    left = [statement for statement, in execute(url, "SELECT statement FROM key_conversion.pending_steps")]
    assert any(statement.startswith("CREATE INDEX CONCURRENTLY") for statement in left), left
    rerun = run_playbook("playbooks/convert.yml", extra_vars(url, tmp_path / "reports"))
    assert rerun.rc == 0, rerun.output[-3000:]
    assert f"left unfinished by an earlier run: {len(left)} steps" in rerun.output
    # The plan counts what the killed run converted: users.id, orders.id, orders.user_id.
    assert "columns to convert: 0 (already converted: 3)" in rerun.output
    assert fingerprint(url) == converted
