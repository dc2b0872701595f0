"""The alter_role strategy against the throwaway cluster (SSL, scram-sha-256): our client-side
SCRAM verifiers are what libpq computes and what the server accepts; the credential_rotation
role rotates a role's own leaked password without the plaintext ever reaching the server or
its log, proves the new password works and the old one is dead, writes the .env files (0600,
backup 0600), and shows no secret even at -vvv; check mode and refusals change nothing; a
re-run with the new URL changes nothing."""

from __future__ import annotations

import hashlib
import os
import stat
import uuid

import psycopg2
import pytest
from ansible.module_utils.env_file import unquote
from ansible.module_utils.pg_scram import parse_verifier, scram_verifier
from psycopg2 import sql
from psycopg2.extensions import encrypt_password

from tests.playbook_runner import run_playbook

pytestmark = pytest.mark.ansible

PLAY = """
- name: Rotate a self-managed role
  hosts: app_environments
  gather_facts: false
  roles:
    - role: credential_rotation
  post_tasks:
    - name: Say who this run's database URL logs in as now (the role's secret output)
      ansible.builtin.debug:
        msg: "recovery user is {{ (credential_rotation_new_database_url | database_url_params).login_user }}"
      when: credential_rotation_new_database_url is defined
"""


def admin(cluster, statement, *args):
    with psycopg2.connect(cluster.admin_url()) as conn, conn.cursor() as cur:
        cur.execute(statement, args or None)
    conn.close()


@pytest.fixture
def role(pg_cluster):
    """A login role with a known (leaked) password, its statements logged (log_statement = all)."""
    name = f"rot_{uuid.uuid4().hex[:10]}"
    password = "leaked-" + uuid.uuid4().hex
    admin(pg_cluster, sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(name)),
          scram_verifier(password))
    admin(pg_cluster, sql.SQL("ALTER ROLE {} SET log_statement = 'all'").format(sql.Identifier(name)))
    yield {"name": name, "password": password, "url": pg_cluster.url("postgres", user=name, password=password)}
    admin(pg_cluster, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def login(cluster, user, password):
    """None when the login works, else the server's error text."""
    try:
        psycopg2.connect(cluster.url("postgres", user=user, password=password), connect_timeout=5).close()
    except psycopg2.OperationalError as exc:
        return str(exc)
    return None


def server_log(cluster) -> str:
    with open(os.path.join(cluster.base_dir, "server.log"), errors="replace") as handle:
        return handle.read()


def env_values(path) -> dict:
    out = {}
    with open(path) as handle:
        lines = handle.read().splitlines()
    for line in lines:
        if "=" in line and not line.startswith("#"):
            key, _, rest = line.removeprefix("export ").partition("=")
            out[key] = unquote(rest)[0]
    return out


def write_env(tmp_path, role):
    path = tmp_path / "app.env"
    path.write_text(f"# the app\nexport DATABASE_URL='{role['url']}'\nSECRET_KEY=keep-me\n"
                    f"PGPASSWORD={role['password']}\n")
    path.chmod(0o640)
    return path


def rotate(tmp_path, role, env_files, *, url=None, check=False, diff=False, verbosity=0, **overrides):
    playbook = tmp_path / "rotate.yml"
    playbook.write_text(PLAY)
    extra = {
        "credential_rotation_strategy": "alter_role",
        "credential_rotation_database_url": url or role["url"],
        "recovery_database_url": url or role["url"],
        "recovery_environment": "selfhosted",
        "credential_rotation_leaked_password_sha256": [hashlib.sha256(role["password"].encode()).hexdigest()],
        "credential_rotation_env_files": env_files,
        **overrides,
    }
    return run_playbook(str(playbook), extra, check=check, diff=diff, verbosity=verbosity, tmp_dir=str(tmp_path))


def test_our_verifier_is_libpqs_and_the_server_accepts_it(pg_cluster, role):
    with psycopg2.connect(pg_cluster.admin_url()) as conn:
        from_libpq = encrypt_password("pencil-42", role["name"], scope=conn, algorithm="scram-sha-256")
    conn.close()
    parts = parse_verifier(from_libpq)
    assert scram_verifier("pencil-42", salt=parts["salt"], iterations=parts["iterations"]) == from_libpq

    fixed = scram_verifier("pencil-42", salt=b"0123456789abcdef")
    admin(pg_cluster, sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(role["name"])), fixed)
    assert login(pg_cluster, role["name"], "pencil-42") is None
    assert "password authentication failed" in login(pg_cluster, role["name"], "pencil-43")


def test_rotation_end_to_end_then_nothing_to_do(pg_cluster, role, tmp_path):
    env = write_env(tmp_path, role)
    files = [{"path": str(env), "keys": {"DATABASE_URL": "database_url", "PGPASSWORD": "password"}}]
    log_before = len(server_log(pg_cluster))

    run = rotate(tmp_path, role, files, diff=True, verbosity=3,
                 credential_rotation_vault_file="inventories/selfhosted-eu/group_vars/all/vault.yml")
    assert run.rc == 0, run.output[-5000:]
    values = env_values(env)
    new_password = values["PGPASSWORD"]
    assert new_password != role["password"] and len(new_password) >= 40
    assert values["SECRET_KEY"] == "keep-me"
    assert env.read_text().startswith("# the app\nexport DATABASE_URL=")

    # The new password logs in (URL from the .env file, over SSL); the old one is dead.
    with psycopg2.connect(values["DATABASE_URL"], connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute("SELECT session_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert cur.fetchone() == (role["name"], True)
    conn.close()
    assert "password authentication failed" in login(pg_cluster, role["name"], role["password"])

    # 0600 file, 0600 backup holding the old file; the masked diff names the keys.
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    backups = [p for p in tmp_path.iterdir() if p.name.startswith("app.env.") and p.name.endswith(".bak")]
    assert len(backups) == 1 and stat.S_IMODE(backups[0].stat().st_mode) == 0o600
    assert env_values(backups[0])["PGPASSWORD"] == role["password"]
    assert "DATABASE_URL=******** (new value)" in run.output and "PGPASSWORD=******** (new value)" in run.output

    # What was done and what the operator must do; no secret anywhere, the server log included.
    assert f"rotated the password of {role['name']}" in run.output
    assert "Update vault_recovery_database_url in inventories/selfhosted-eu/group_vars/all/vault.yml" in run.output
    assert f"DATABASE_URL in {env}" in run.output
    assert f"recovery user is {role['name']}" in run.output
    for secret in (role["password"], new_password):
        assert secret not in run.output
    log = server_log(pg_cluster)[log_before:]
    assert f'ALTER ROLE "{role["name"]}" PASSWORD \'SCRAM-SHA-256$4096:' in log or \
        f"ALTER ROLE {role['name']} PASSWORD 'SCRAM-SHA-256$4096:" in log
    assert new_password not in log and role["password"] not in log

    # A re-run still holding the old URL is told to update the vault; nothing changes.
    stale = rotate(tmp_path, role, files)
    assert stale.rc != 0 and "rejected" in stale.output and "vault_recovery_database_url" in stale.output
    assert env_values(env)["PGPASSWORD"] == new_password

    # With the vault updated (the new URL), there is nothing left to do.
    again = rotate(tmp_path, role, files, url=values["DATABASE_URL"])
    assert again.rc == 0, again.output[-4000:]
    assert again.recap()["changed"] == 0
    assert "nothing to rotate" in again.output
    assert env_values(env)["PGPASSWORD"] == new_password


def test_check_mode_logs_in_and_changes_nothing(pg_cluster, role, tmp_path):
    env = write_env(tmp_path, role)
    before = env.read_text()
    files = [{"path": str(env), "keys": {"DATABASE_URL": "database_url"}}]
    checked = rotate(tmp_path, role, files, check=True, diff=True)
    assert checked.rc == 0, checked.output[-4000:]
    assert f"would rotate the password of {role['name']}" in checked.output
    assert env.read_text() == before and stat.S_IMODE(env.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("app.env")) == ["app.env"]
    assert login(pg_cluster, role["name"], role["password"]) is None
    assert role["password"] not in checked.output


@pytest.mark.parametrize("case", ["missing", "symlink", "no_env_file", "bad_kind"])
def test_bad_input_is_refused_before_the_password_changes(pg_cluster, role, tmp_path, case):
    env = write_env(tmp_path, role)
    files = {
        "missing": [{"path": str(tmp_path / "nope.env"), "keys": {"DATABASE_URL": "database_url"}}],
        "symlink": [{"path": str(tmp_path / "link.env"), "keys": {"DATABASE_URL": "database_url"}}],
        "no_env_file": [],
        "bad_kind": [{"path": str(env), "keys": {"DATABASE_URL": "api_key"}}],
    }[case]
    os.symlink(env, tmp_path / "link.env")
    refused = rotate(tmp_path, role, files)
    assert refused.rc != 0
    expected = {"missing": "does not exist", "symlink": "symbolic link",
                "no_env_file": "at least one credential_rotation_env_files entry",
                "bad_kind": "database_url, password, user"}[case]
    assert expected in refused.output, refused.output[-3000:]
    assert login(pg_cluster, role["name"], role["password"]) is None
    assert role["password"] not in refused.output


def test_a_password_not_leaked_is_left_alone(pg_cluster, role, tmp_path):
    env = write_env(tmp_path, role)
    run = rotate(tmp_path, role, [{"path": str(env), "keys": {"PGPASSWORD": "password"}}],
                 credential_rotation_leaked_password_sha256=[hashlib.sha256(b"another").hexdigest()])
    assert run.rc == 0, run.output[-4000:]
    assert run.recap()["changed"] == 0 and "nothing to rotate" in run.output
    assert login(pg_cluster, role["name"], role["password"]) is None


def test_a_failed_proof_puts_the_old_password_back(pg_cluster, role, tmp_path):
    # CONNECTION LIMIT 1: the rotating session holds the only slot, so the new login fails for real.
    admin(pg_cluster, sql.SQL("ALTER ROLE {} CONNECTION LIMIT 1").format(sql.Identifier(role["name"])))
    env = write_env(tmp_path, role)
    before = env.read_text()
    failed = rotate(tmp_path, role, [{"path": str(env), "keys": {"PGPASSWORD": "password"}}])
    assert failed.rc != 0
    flat = " ".join(failed.output.split())
    assert "the new password of" in flat and "the old password was put back, nothing changed" in flat
    assert login(pg_cluster, role["name"], role["password"]) is None
    assert env.read_text() == before
    assert role["password"] not in failed.output
