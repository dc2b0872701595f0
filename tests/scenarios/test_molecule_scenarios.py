"""Every Molecule scenario (`molecule test -s <role>`: syntax, converge, idempotence with
changed=0, check mode, verify), run from pytest so `make test` packs them beside the other
slow tests on both cores; `make molecule` runs the same scenarios one after another."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIOS = sorted(name for name in os.listdir(os.path.join(ROOT, "molecule"))
                   if os.path.isfile(os.path.join(ROOT, "molecule", name, "molecule.yml")))


def test_every_role_has_a_scenario():
    roles = sorted(os.listdir(os.path.join(ROOT, "roles")))
    assert [role for role in roles if role not in SCENARIOS] == []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario):
    env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "PY_COLORS": "0", "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "molecule"), "test", "-s", scenario],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"molecule test -s {scenario} failed:\n{output[-6000:]}"
    summary = [line for line in output.splitlines() if "successful=" in line]
    assert summary and "failed=0" in summary[-1], output[-3000:]
