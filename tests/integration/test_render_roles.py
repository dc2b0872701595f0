"""The Render roles (maintenance_mode, app_deploy) as an operator runs them, against the
simulator: an API error and a failed deploy are readable at default verbosity although the
tasks holding the key are no_log, and the key never appears, not even at -vvv."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from localenv.render_sim import testing

pytestmark = pytest.mark.ansible

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# -- the roles: failures readable although the tasks holding the key are no_log ---------------------

ROLE_PLAY = """
- hosts: localhost
  gather_facts: false
  roles:
    - role: {role}
"""


def run_role(tmp_path, role: str, role_vars: dict, *, verbosity=0, name="role"):
    """A role as an operator runs it: the default callback, the key only in a 0600 vars file
    (never in the environment or on the command line). Returns (rc, output)."""
    playbook = tmp_path / f"{name}.yml"
    playbook.write_text(ROLE_PLAY.format(role=role))
    vars_file = tmp_path / f"{name}-vars.yml"
    vars_file.write_text(yaml.safe_dump(role_vars))
    vars_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RENDER_", "ANSIBLE_"))}
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
            "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"@{vars_file}",
            str(playbook)] + (["-" + "v" * verbosity] if verbosity else [])
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def role_vars(prefix: str, server, service_id: str, key: str, **more) -> dict:
    return {f"{prefix}_service_id": service_id, "render_api_key": key,
            "render_api_base_url": server.base_url, **more}


LEAKY_PRE_DEPLOY = ("echo 'FATAL: could not connect to postgresql://app:hunter2pw@db.internal/app' >&2; "
                    "echo 'alembic.util.exc.CommandError: Can not locate revision abc123' >&2; exit 2")


def test_roles_show_api_errors_and_failed_deploys_readably_and_never_the_key(pg_cluster, tmp_path):
    with testing.running(pg_cluster, pre_deploy_command=LEAKY_PRE_DEPLOY) as (server, names, key):
        srv = names["service"]
        wrong = "rnd_wrong_" + key[-12:]
        # A 401: Render's answer at default verbosity, not just "censored".
        for role, prefix, extra in (("maintenance_mode", "maintenance_mode", {"maintenance_mode_enabled": True}),
                                    ("app_deploy", "app_deploy", {"app_deploy_poll_interval": 1})):
            rc, output = run_role(tmp_path, role, role_vars(prefix, server, srv, wrong, **extra), name=role)
            assert rc == 2, output[-3000:]
            assert f"Render API key rejected (HTTP 401) on GET /services/{srv}" in output, output[-3000:]
            assert wrong not in output
        # Bad input: the assert's own message, though the check reads the key.
        rc, output = run_role(tmp_path, "app_deploy", role_vars("app_deploy", server, "not-an-id", key),
                              name="bad-input")
        assert rc == 2 and "app_deploy_service_id must be a Render service id (srv-...), got not-an-id" in output

        # A deploy whose pre-deploy command fails: status, the event and the log tail, at
        # default verbosity; the database password the app printed is masked.
        deploy_vars = role_vars("app_deploy", server, srv, key, app_deploy_poll_interval=1,
                                app_deploy_trigger="always")
        rc, output = run_role(tmp_path, "app_deploy", deploy_vars, name="failing")
        assert rc == 2, output[-3000:]
        assert "ended pre_deploy_failed (pre-deploy command exited 2)" in output, output[-3000:]
        assert "status: pre_deploy_failed" in output
        assert '"preDeployStatus": "failed"' in output and '"nonZeroExit": 2' in output
        assert "Can not locate revision abc123" in output
        assert "postgresql://app:********@db.internal/app" in output and "hunter2pw" not in output
        assert key not in output

        # -vvv: everything Ansible prints, and still never the key.
        for role, prefix, extra in (("maintenance_mode", "maintenance_mode", {"maintenance_mode_enabled": True}),
                                    ("app_deploy", "app_deploy", {"app_deploy_poll_interval": 1,
                                                                  "app_deploy_trigger": "always"})):
            rc, output = run_role(tmp_path, role, role_vars(prefix, server, srv, key, **extra), verbosity=3,
                                  name=f"{role}-vvv")
            assert "<127.0.0.1> EXEC" in output or "ESTABLISH LOCAL CONNECTION" in output  # really -vvv
            assert key not in output and "hunter2pw" not in output
        assert "ended pre_deploy_failed" in output
