"""Run ansible-playbook as an operator would, with secrets kept off the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)

INVENTORY = """\
app_environments:
  hosts:
    test-env:
      ansible_connection: local
      ansible_python_interpreter: {python}
"""


@dataclass
class PlaybookRun:
    rc: int
    output: str
    argv: list[str]

    def recap(self, host: str = "test-env") -> dict:
        for line in self.output.splitlines():
            if line.startswith(host) and "ok=" in line:
                return {k: int(v) for k, v in (p.split("=") for p in line.split(":", 1)[1].split())}
        raise AssertionError(f"no recap for {host} in:\n{self.output[-3000:]}")


def run_playbook(playbook: str, extra_vars: dict, *, check: bool = False, diff: bool = False,
                 verbosity: int = 0, tmp_dir: str | None = None, env: dict | None = None) -> PlaybookRun:
    """extra_vars go through a 0600 file (-e @file), never argv."""
    with tempfile.TemporaryDirectory(dir=tmp_dir) as work:
        inventory = os.path.join(work, "hosts.yml")
        with open(inventory, "w") as handle:
            handle.write(INVENTORY.format(python=sys.executable))
        vars_file = os.path.join(work, "vars.json")
        fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(extra_vars, handle)
        argv = [os.path.join(BIN, "ansible-playbook"), os.path.join(ROOT, playbook),
                "-i", inventory, "-e", f"@{vars_file}"]
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        if verbosity:
            argv.append("-" + "v" * verbosity)
        proc = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=600,
            env={**os.environ, "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
                 "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", **(env or {})},
        )
        return PlaybookRun(proc.returncode, proc.stdout + proc.stderr, argv)
