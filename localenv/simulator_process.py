"""The Render API simulator as a background process of the local environment.

``python -m localenv up`` starts it beside the cluster and writes its base URL
and API key (0600) into the state directory for the local inventory; ``down``
stops it. The key never appears on a command line.
"""

from __future__ import annotations

import contextlib
import os
import select
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
    argv = [sys.executable, "-m", "localenv.render_sim", "--state", STATE, "--cluster-dir", cluster_dir,
            "--api-key-file", os.path.join(state_dir, KEY_FILE), "--workdir", ROOT]
    proc, url = launch(argv, state_dir, timeout=timeout)
    with open(os.path.join(state_dir, PID_FILE), "w") as handle:
        handle.write(str(proc.pid))
    with open(url_path, "w") as handle:
        handle.write(url)
    return url


def launch(argv: list[str], state_dir: str, *, timeout: float) -> tuple[subprocess.Popen, str]:
    """Start ``argv`` in a session of its own and return it with the base URL it prints on
    its first line. A child that prints no URL within ``timeout`` (stalled, or exited) is
    stopped and a RuntimeError names the log."""
    log_path = os.path.join(state_dir, LOG_FILE)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the shell that started it; down stops it
            env={k: v for k, v in os.environ.items() if k != "RENDER_API_KEY"},
        )
    try:
        line = _first_line(proc.stdout.fileno(), time.monotonic() + timeout)
    finally:
        proc.stdout.close()
    if line is None or not line.startswith("http"):
        try:
            code = proc.wait(timeout=1)  # closed stdout: it is exiting
        except subprocess.TimeoutExpired:
            code = None
        stop_group(proc)
        why = f"exited with code {code}" if code is not None else f"printed no URL within {timeout:.0f}s"
        raise RuntimeError(f"the Render simulator did not start ({why}); see {log_path}")
    return proc, line


def _first_line(fd: int, deadline: float) -> str | None:
    """The first line written to ``fd``, or None at the deadline; never blocks past it
    (a bare readline() would wait for a stalled child forever)."""
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:  # the child closed its stdout: it exited
            break
        data += chunk
    return data.split(b"\n", 1)[0].decode("utf-8", "replace").strip()


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a child started by launch, and whatever it started (its own session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


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
