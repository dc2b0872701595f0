"""env_file_update through ansible-playbook, as an operator runs it: check mode and --diff at
-vvv name the keys and never a value (old or new), the real run rewrites only the named key
(0600, a 0600 backup), a second run changes nothing, a missing file fails with a clear message."""

from __future__ import annotations

import secrets
import stat

import pytest

from tests.playbook_runner import run_playbook

pytestmark = pytest.mark.ansible

PLAY = """
- name: Update a .env file
  hosts: app_environments
  gather_facts: false
  tasks:
    - name: Set the database URL
      env_file_update:
        path: "{{ env_path }}"
        values:
          DATABASE_URL: "{{ new_database_url }}"
      register: updated

    - name: Show what changed (key names only)
      ansible.builtin.debug:
        msg: "changed keys {{ updated.changed_keys }} backup {{ updated.backup_file is string }}"
"""


def run(tmp_path, env_path, new_url, **kwargs):
    playbook = tmp_path / "env.yml"
    playbook.write_text(PLAY)
    return run_playbook(str(playbook), {"env_path": str(env_path), "new_database_url": new_url},
                        tmp_dir=str(tmp_path), verbosity=3, diff=True, **kwargs)


def test_env_file_update_never_shows_a_value(tmp_path):
    old = "postgresql://app:" + secrets.token_urlsafe(24) + "@db:5432/app"
    new = "postgresql://app:" + secrets.token_urlsafe(24) + "@db:5432/app"
    env = tmp_path / ".env"
    original = f"# app\nDATABASE_URL={old}\nOTHER=1\n"
    env.write_text(original)
    env.chmod(0o644)

    checked = run(tmp_path, env, new, check=True)
    assert checked.rc == 0, checked.output[-3000:]
    assert "DATABASE_URL=******** (new value)" in checked.output
    assert env.read_text() == original
    assert checked.recap()["changed"] == 1

    applied = run(tmp_path, env, new)
    assert applied.rc == 0, applied.output[-3000:]
    assert "changed keys ['DATABASE_URL'] backup True" in applied.output
    assert env.read_text() == f"# app\nDATABASE_URL={new}\nOTHER=1\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    backups = list(tmp_path.glob(".env.*.bak"))
    assert len(backups) == 1 and backups[0].read_text() == original
    assert stat.S_IMODE(backups[0].stat().st_mode) == 0o600

    again = run(tmp_path, env, new)
    assert again.rc == 0 and again.recap()["changed"] == 0
    for output in (checked.output, applied.output, again.output):
        for secret in (old, new, old.split(":")[2].split("@")[0], new.split(":")[2].split("@")[0]):
            assert secret not in output

    missing = run(tmp_path, tmp_path / "absent.env", new)
    assert missing.rc != 0 and "absent.env does not exist" in missing.output
    assert new not in missing.output
