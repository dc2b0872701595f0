"""The Render API simulator as a process: its command line (``python -m localenv.render_sim``)
and how ``python -m localenv up`` launches it in the background and stops one that stalls."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg2
import pytest
from ansible.module_utils.render_api import RenderClient

from localenv.render_sim import testing
from tests.playbook_runner import ROOT

# -- the command line ------------------------------------------------------------------------------

def test_cli_prints_its_base_url_and_serves(pg_cluster, tmp_path):
    import yaml

    state, names = testing.make_state()
    state_file = tmp_path / "state.yml"
    state_file.write_text(yaml.safe_dump(state))
    key = "rnd_cli_test_key"
    env = dict(os.environ, RENDER_API_KEY=key)
    proc = subprocess.Popen([sys.executable, "-m", "localenv.render_sim", "--state", str(state_file),
                             "--cluster-dir", pg_cluster.base_dir], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        service = RenderClient(key, base_url).get_service(names["service"])
        assert service["name"].startswith("api-")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
        import psycopg2.sql as pgsql

        conn = psycopg2.connect(pg_cluster.admin_url())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                pgsql.Identifier(names["database"])))
            cur.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(names["user"])))
        conn.close()
    assert proc.returncode == 0
    assert key not in err


# -- the simulator as a background process (python -m localenv up) -----------------------------------

STALLS = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); {before}; time.sleep(120)"


@pytest.mark.parametrize("before", ["pass", "sys.stdout.write('http://127.0.0.1:1'); sys.stdout.flush()"],
                         ids=["prints-nothing", "half-a-line"])
def test_a_stalled_simulator_fails_at_the_timeout_and_is_stopped(tmp_path, before):
    from localenv import simulator_process

    pid_file = tmp_path / "pid"
    argv = [sys.executable, "-c", STALLS.format(before=before), str(pid_file)]
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"did not start \(printed no URL within 2s\); see .*render_sim.log"):
        simulator_process.launch(argv, str(tmp_path), timeout=2.0)
    assert 1.9 <= time.monotonic() - started < 15
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped, not left running


def test_a_simulator_that_exits_says_so(tmp_path):
    from localenv import simulator_process

    argv = [sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(4)"]
    with pytest.raises(RuntimeError, match=r"exited with code 4"):
        simulator_process.launch(argv, str(tmp_path), timeout=30.0)
    assert "boom" in (tmp_path / simulator_process.LOG_FILE).read_text()


def test_launch_returns_the_first_line(tmp_path):
    from localenv import simulator_process

    argv = [sys.executable, "-c", "import time; print('http://127.0.0.1:9/v1', flush=True); time.sleep(120)"]
    proc, url = simulator_process.launch(argv, str(tmp_path), timeout=30.0)
    try:
        assert url == "http://127.0.0.1:9/v1" and proc.poll() is None
    finally:
        simulator_process.stop_group(proc)
