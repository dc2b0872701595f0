"""Investigation and conversion need nothing but a database URL: investigate.yml and
convert.yml work with the local inventory while its Render simulator is down (its
render_* lookups cannot be read), and messages print normalized paths (no "/../")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.playbook_runner import BIN, ROOT, run_playbook

pytestmark = pytest.mark.ansible

VERSIONS_DIR = os.path.join(ROOT, "demoapp", "migrations", "versions")


@pytest.fixture
def local_inventory_without_simulator(tmp_path, broken_db):
    """inventories/local as shipped, after `python -m localenv up --no-simulator`: only the
    database URL file exists, so every render_* lookup fails."""
    shutil.copytree(os.path.join(ROOT, "inventories", "local"), tmp_path / "inventories" / "local")
    state = tmp_path / ".localenv"
    state.mkdir(mode=0o700)
    fd = os.open(state / "recovery_database_url", os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(broken_db)
    return str(tmp_path / "inventories" / "local")


def playbook(name, inventory, tmp_path, extra, *options):
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps(extra))
    os.chmod(vars_file, 0o600)
    # The inventory's own ansible_python_interpreter is the playbook's python: this venv's.
    argv = [os.path.join(BIN, "ansible-playbook"), os.path.join(ROOT, "playbooks", name), "-i", inventory,
            "-e", f"@{vars_file}", *options]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
                               "ANSIBLE_NOCOLOR": "1", "PATH": f"{BIN}:{os.environ['PATH']}"})
    return proc.returncode, proc.stdout + proc.stderr


def test_investigate_and_convert_need_only_the_database(local_inventory_without_simulator, tmp_path):
    inventory = local_inventory_without_simulator
    extra = {"investigate_alembic_versions_dir": VERSIONS_DIR, "investigate_report_dir": str(tmp_path / "reports"),
             "convert_keys_report_dir": str(tmp_path / "reports"), "convert_keys_backup_dir": str(tmp_path / "b"),
             "backup_dir": str(tmp_path / "b"), "convert_keys_require_backup": False}
    rc, output = playbook("convert.yml", inventory, tmp_path, extra, "--check", "--diff")
    assert rc == 0, output[-4000:]
    assert "public.users.id: uuid -> varchar(36)" in output

    # Render is read for the disk size unless the run says it is not used; a Render
    # variable that cannot be read is then named, never a bare argument-validation error.
    rc, output = playbook("investigate.yml", inventory, tmp_path, extra)
    assert rc != 0
    assert "render_api_key could not be read" in output and "recovery_render: false" in output
    rc, output = playbook("investigate.yml", inventory, tmp_path, {**extra, "recovery_render": False})
    assert rc == 0, output[-4000:]
    assert "conversion needed: yes" in output


def test_messages_print_normalized_paths(broken_db):
    result = run_playbook("playbooks/investigate.yml", {"recovery_database_url": broken_db,
                                                        "investigate_alembic_versions_dir": VERSIONS_DIR})
    run_dirs = sorted(os.listdir(os.path.join(ROOT, "reports", "test-env")))
    try:
        assert result.rc == 0, result.output[-3000:]
        assert f"report: {ROOT}/reports/test-env/{run_dirs[-1]}/findings.md" in result.output
        assert "/../" not in result.output
    finally:
        shutil.rmtree(os.path.join(ROOT, "reports", "test-env", run_dirs[-1]))
