"""The execution environment's build context, as ansible-builder creates it: the
base image, the same pinned Python requirements as a control node's `make setup`,
ansible-core and ansible-runner at the versions tested here, and the PostgreSQL
client and server tools the backups and the scratch cluster need."""

import os
import re
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pins(path: str) -> dict:
    found = {}
    with open(path) as handle:
        for line in handle:
            match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
            if match:
                found[match.group(1).lower()] = match.group(2)
    return found


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    out = tmp_path_factory.mktemp("ee") / "context"
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-builder"), "create",
                    "-f", os.path.join(ROOT, "execution-environment.yml"), "-c", str(out),
                    "--output-filename", "Containerfile"], cwd=ROOT, check=True, capture_output=True, text=True)
    return out


def test_the_context_carries_the_control_nodes_pinned_requirements(context):
    ours = pins(os.path.join(ROOT, "requirements.txt"))
    assert pins(str(context / "_build" / "requirements.txt")) == ours
    containerfile = (context / "Containerfile").read_text()
    dev = pins(os.path.join(ROOT, "requirements-dev.txt"))
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="([^"]+)"', containerfile, re.M).group(1).split()
    assert sorted(refs) == sorted([f"ansible-core=={ours['ansible-core']}",
                                   f"ansible-runner=={dev['ansible-runner']}"])
    assert re.search(r'^ARG EE_BASE_IMAGE="[^"]+"', containerfile, re.M)
    assert "USER 1000" in containerfile  # initdb refuses root: the scratch cluster runs as this user


def test_the_context_installs_the_postgresql_tools(context):
    bindep = (context / "_build" / "bindep.txt").read_text()
    for package in ("postgresql", "postgresql-server", "openssl"):
        assert re.search(rf"^{re.escape(package)} \[platform:rpm\]", bindep, re.M), package
    with open(os.path.join(ROOT, "execution-environment.yml")) as handle:
        definition = yaml.safe_load(handle)
    assert definition["version"] == 3
    assert "module enable postgresql:16" in (context / "Containerfile").read_text()
