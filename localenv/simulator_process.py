"""The Render API simulator as a background process of the local environment.

``python -m localenv up`` starts it beside the cluster and writes its base URL
and API key (0600) into the state directory for the local inventory; ``down``
stops it. The key never appears on a command line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE = os.path.join(ROOT, "localenv", "render_sim", "example_state.yml")
PID_FILE = "render_sim.pid"
URL_FILE = "render_api_url"
KEY_FILE = "render_api_key"
LOG_FILE = "render_sim.log"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_pid(state_dir: str) -> int | None:
    try:
        with open(os.path.join(state_dir, PID_FILE)) as handle:
            pid = int(handle.read().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def start(state_dir: str, cluster_dir: str, *, timeout: float = 60.0) -> str:
    """Start the simulator unless it runs; returns its base URL."""
    url_path = os.path.join(state_dir, URL_FILE)
    if running_pid(state_dir) and os.path.exists(url_path):
        with open(url_path) as handle:
            return handle.read().strip()
    log = open(os.path.join(state_dir, LOG_FILE), "ab")  # noqa: SIM115 -- handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "localenv.render_sim", "--state", STATE, "--cluster-dir", cluster_dir,
         "--api-key-file", os.path.join(state_dir, KEY_FILE), "--workdir", ROOT],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
        start_new_session=True,  # survives the shell that started it; down stops it
        env={k: v for k, v in os.environ.items() if k != "RENDER_API_KEY"},
    )
    log.close()
    deadline = time.monotonic() + timeout
    url = proc.stdout.readline().decode().strip()
    proc.stdout.close()
    if not url.startswith("http") or time.monotonic() > deadline:
        proc.terminate()
        raise RuntimeError(f"the Render simulator did not start; see {os.path.join(state_dir, LOG_FILE)}")
    with open(os.path.join(state_dir, PID_FILE), "w") as handle:
        handle.write(str(proc.pid))
    with open(url_path, "w") as handle:
        handle.write(url)
    return url


def stop(state_dir: str) -> bool:
    pid = running_pid(state_dir)
    for name in (PID_FILE, URL_FILE):
        path = os.path.join(state_dir, name)
        if os.path.exists(path):
            os.unlink(path)
    if not pid:
        return False
    os.killpg(pid, signal.SIGTERM)
    for _ in range(100):
        if not _alive(pid):
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
    return True
