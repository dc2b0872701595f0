"""The credential_rotation role against the Render simulator and its real PostgreSQL: two
leaked Render-managed users are replaced without an outage, after which their passwords
really stop working; a second run changes nothing; check mode sends no mutating request;
an interrupted run converges without a second user; a leaked API key is refused; no
secret reaches the output, even at -vvv."""

from __future__ import annotations

import hashlib
import os
import re
import secrets

import psycopg2
import pytest
import requests
import yaml

from localenv.render_sim import start, testing
from tests.playbook_runner import run_playbook

pytestmark = pytest.mark.ansible

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# The pre-deploy logs in with the service's DATABASE_URL, as the app's migrations do.
MIGRATE = ("python -c \"import os, psycopg2; c = psycopg2.connect(os.environ['DATABASE_URL']); "
           "c.autocommit = True; c.cursor().execute('CREATE TABLE IF NOT EXISTS migrated (id int)')\"")

PLAY = """
- name: Rotate
  hosts: app_environments
  gather_facts: false
  vars_files: [{secrets}]
  tasks:
    - name: Rotate the leaked credentials
      ansible.builtin.include_role:
        name: credential_rotation
      vars:
        credential_rotation_postgres_id: "{{{{ render_postgres_id }}}}"
        credential_rotation_database_url: "{{{{ recovery_database_url }}}}"
        credential_rotation_poll_interval: 1
        credential_rotation_health_delay: 1
        credential_rotation_idle_interval: 1
        credential_rotation_idle_timeout: 30

    - name: Say who this run's database URL logs in as now (the role's secret output)
      ansible.builtin.debug:
        msg: "recovery user is {{{{ (credential_rotation_new_database_url | database_url_params).login_user }}}}"
      when: credential_rotation_new_database_url is defined
"""


@pytest.fixture
def world(pg_cluster, tmp_path):
    """A simulator whose database has two leaked users (the newer one the default, in the
    service's DATABASE_URL), and the run's database URL logging in as that leaked user."""
    state, names = testing.make_state(pre_deploy_command=MIGRATE)
    suffix = names["database"][len("sim_"):]
    leaked = [f"sim_{suffix}_app_a", f"sim_{suffix}_app_b"]
    state["postgres"][0]["credentials"] = leaked
    key = "rnd_test_" + secrets.token_urlsafe(16)
    server = start(state, pg_cluster, api_key=key)
    try:
        instance = server.sim.postgres[names["postgres"]]
        passwords = {c["username"]: c["password"] for c in instance.credentials}
        secrets_file = tmp_path / "secrets.yml"
        fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump({"render_api_key": key, "recovery_database_url": pg_cluster.url(
                names["database"], user=leaked[1], password=passwords[leaked[1]])}, handle)
        playbook = tmp_path / "rotate.yml"
        playbook.write_text(PLAY.format(secrets=secrets_file))
        yield {"server": server, "names": names, "key": key, "leaked": leaked, "passwords": passwords,
               "cluster": pg_cluster, "playbook": str(playbook), "control": testing.Control(server, key)}
    finally:
        server.stop()
        testing.drop_world(pg_cluster, server)


def rotate(world, tmp_path, *, check=False, diff=False, verbosity=0, **overrides):
    extra = {
        "render_api_base_url": world["server"].base_url,
        "render_postgres_id": world["names"]["postgres"],
        "recovery_environment": "staging",
        "credential_rotation_leaked_users": world["leaked"],
        "credential_rotation_services": [{"service": world["names"]["service"], "env_vars": ["DATABASE_URL"]}],
        "credential_rotation_user_prefix": "rotated",
        "credential_rotation_run_id": "20260105",
        **overrides,
    }
    return run_playbook(world["playbook"], extra, check=check, diff=diff, verbosity=verbosity,
                        tmp_dir=str(tmp_path))


def can_log_in(world, user, password) -> bool:
    try:
        psycopg2.connect(world["cluster"].url(world["names"]["database"], user=user, password=password),
                         connect_timeout=5).close()
    except psycopg2.OperationalError:
        return False
    return True


def mutations(world) -> list[str]:
    return [f"{e['method']} {e['path']}" for e in world["control"].journal() if e["method"] in MUTATING]


def credentials(world) -> list[dict]:
    return world["server"].sim.postgres[world["names"]["postgres"]].credentials


def test_full_rotation_then_nothing_to_do(world, tmp_path):
    leaked, passwords = world["leaked"], world["passwords"]
    assert all(can_log_in(world, user, passwords[user]) for user in leaked)
    world["control"].clear_journal()

    first = rotate(world, tmp_path, verbosity=3)
    assert first.rc == 0, first.output[-5000:]
    new_user = "rotated_20260105"

    # Both leaked passwords are dead, for real; the new URL works.
    assert not can_log_in(world, leaked[0], passwords[leaked[0]])
    assert not can_log_in(world, leaked[1], passwords[leaked[1]])
    users = [c["username"] for c in credentials(world)]
    assert users == [world["names"]["user"], new_user]
    instance = world["server"].sim.postgres[world["names"]["postgres"]]
    new_password = instance.default["password"]
    info = instance.connection_info()
    with psycopg2.connect(info["externalConnectionString"], connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute("SELECT session_user, to_regclass('migrated') IS NOT NULL")
        assert cur.fetchone() == (new_user, True)  # and the deploy's pre-deploy ran as it

    # The service runs with the new user: live, healthy.
    service = world["server"].sim.services[world["names"]["service"]]
    assert service.live_env["DATABASE_URL"] == info["internalConnectionString"]
    assert service.deploys[0]["status"] == "live"
    assert requests.get(service.url + "/health", timeout=10).status_code == 200

    # Ordered: the new user and the deploy before any delete.
    done = mutations(world)
    first_delete = next(i for i, m in enumerate(done) if m.startswith("DELETE"))
    assert [m for m in done[:first_delete] if m.startswith("POST /v1/postgres")] == [
        f"POST /v1/postgres/{world['names']['postgres']}/credentials"]
    assert any(m.endswith("/deploys") for m in done[:first_delete])
    assert sorted(done[first_delete:]) == sorted(
        f"DELETE /v1/postgres/{world['names']['postgres']}/credentials/{user}" for user in leaked)

    # This run's URL for later steps (credential_rotation_new_database_url) is the new user's;
    # the operator is told to update the vault of the inventory the run used (its directory,
    # not recovery_environment's "staging"); the leaked password the run's URL held is proven dead.
    assert f"recovery user is {new_user}" in first.output
    vault = re.search(r"Update vault_recovery_database_url in (\S+) \(ansible-vault edit\)", first.output)
    assert vault and vault[1].startswith(tmp_path.name + os.sep) and vault[1].endswith("/group_vars/all/vault.yml")
    assert "inventories/staging" not in first.output
    assert f"A login with the leaked password of {leaked[1]} is rejected" in first.output
    for secret in (world["key"], new_password, *passwords.values()):
        assert secret not in first.output

    loaded = testing.load_openapi()
    if loaded is not None:
        assert testing.journal_problems(loaded[0], world["control"].journal()) == []

    world["control"].clear_journal()
    second = rotate(world, tmp_path, credential_rotation_run_id="20260106")
    assert second.rc == 0, second.output[-4000:]
    assert second.recap()["changed"] == 0
    assert mutations(world) == []
    assert "nothing to rotate: no leaked user left" in second.output


def test_check_mode_plans_from_the_api_and_changes_nothing(world, tmp_path):
    world["control"].clear_journal()
    before = [dict(c) for c in credentials(world)]
    env_before = dict(world["server"].sim.services[world["names"]["service"]].env)

    checked = rotate(world, tmp_path, check=True, diff=True)
    assert checked.rc == 0, checked.output[-4000:]
    assert mutations(world) == []
    assert [dict(c) for c in credentials(world)] == before
    assert world["server"].sim.services[world["names"]["service"]].env == env_before
    assert "rotate: leaked users " + ", ".join(world["leaked"]) + " -> new user rotated_20260105" in checked.output
    assert "DATABASE_URL=******** (new value)" in checked.output
    assert checked.recap()["changed"] > 0
    for secret in (world["key"], *world["passwords"].values()):
        assert secret not in checked.output


def test_an_interrupted_run_converges_without_a_second_user(world, tmp_path):
    control = world["control"]
    control.faults("POST /services/{serviceId}/deploys", [{"status": 409, "body": {"message": "simulated conflict"}}])
    broken = rotate(world, tmp_path)
    assert broken.rc != 0
    assert "simulated conflict" in broken.output and "no leaked user was deleted" in broken.output
    # Stopped after the new user and the variable, before any delete: the app still works.
    assert [c["username"] for c in credentials(world)] == [world["names"]["user"], *world["leaked"],
                                                            "rotated_20260105"]
    assert all(can_log_in(world, u, world["passwords"][u]) for u in world["leaked"])

    # Re-run on another day: the user the first run created is reused.
    again = rotate(world, tmp_path, credential_rotation_run_id="20260106")
    assert again.rc == 0, again.output[-4000:]
    assert "existing user rotated_20260105" in again.output
    assert [c["username"] for c in credentials(world)] == [world["names"]["user"], "rotated_20260105"]
    assert not any(can_log_in(world, u, world["passwords"][u]) for u in world["leaked"])
    service = world["server"].sim.services[world["names"]["service"]]
    assert "rotated_20260105" in service.live_env["DATABASE_URL"]


def test_a_leaked_api_key_is_refused_before_anything_changes(world, tmp_path):
    world["control"].clear_journal()
    fingerprint = hashlib.sha256(world["key"].encode()).hexdigest()
    refused = rotate(world, tmp_path, credential_rotation_leaked_api_key_sha256=[
        hashlib.sha256(b"an older key").hexdigest(), fingerprint.upper()])
    assert refused.rc != 0
    assert "matches leaked fingerprint #2" in refused.output
    assert "revoke it in the Render Dashboard" in refused.output and "vault_render_api_key" in refused.output
    assert mutations(world) == []
    assert world["key"] not in refused.output
    assert len(credentials(world)) == 3


def test_bad_input_fails_before_anything_changes(world, tmp_path):
    world["control"].clear_journal()
    refused = rotate(world, tmp_path, credential_rotation_leaked_users=["Not-A-User"])
    assert refused.rc != 0 and "'Not-A-User' is not a Render username" in refused.output
    assert mutations(world) == []


def test_a_vault_file_placeholder_is_refused_before_anything_changes(world, tmp_path):
    world["control"].clear_journal()
    refused = rotate(world, tmp_path, credential_rotation_vault_file="inventories/CHANGE_ME/group_vars/all/vault.yml")
    assert refused.rc != 0
    assert "credential_rotation_vault_file still holds a CHANGE_ME placeholder" in refused.output
    assert "nothing was changed" in refused.output and mutations(world) == []


def test_a_bad_database_url_is_refused_before_the_new_user(world, tmp_path):
    """rotate_credentials.yml as shipped, -e recovery_database_url=notaurl: every input is checked
    before the first request that changes anything (the new user came first)."""
    world["control"].clear_journal()
    refused = run_playbook("playbooks/rotate_credentials.yml", {
        "render_api_key": world["key"], "render_api_base_url": world["server"].base_url,
        "render_postgres_id": world["names"]["postgres"], "recovery_database_url": "notaurl",
        "recovery_environment": "staging", "credential_rotation_leaked_users": world["leaked"],
        "credential_rotation_services": [{"service": world["names"]["service"], "env_vars": ["DATABASE_URL"]}],
        "credential_rotation_user_prefix": "rotated", "credential_rotation_run_id": "20260105"},
        tmp_dir=str(tmp_path))
    assert refused.rc != 0
    assert ("credential_rotation_database_url (recovery_database_url): database URL must start with "
            "postgresql:// or postgres://") in refused.output
    assert "nothing was changed" in refused.output
    assert mutations(world) == []
    assert len(credentials(world)) == 3
    assert world["key"] not in refused.output


def test_local_env_files_get_the_new_user(world, tmp_path):
    leaked = world["leaked"][1]
    old_url = world["cluster"].url(world["names"]["database"], user=leaked, password=world["passwords"][leaked])
    env = tmp_path / "app.env"
    original = f"# local tools\nDATABASE_URL={old_url}\nKEEP=1\n"
    env.write_text(original)
    files = [{"path": str(env), "keys": {"DATABASE_URL": "database_url", "PGUSER": "user"}}]

    done = rotate(world, tmp_path, diff=True, verbosity=3, credential_rotation_env_files=files)
    assert done.rc == 0, done.output[-4000:]
    lines = env.read_text().splitlines()
    assert lines[0] == "# local tools" and lines[2:] == ["KEEP=1", "PGUSER=rotated_20260105"]
    new_url = lines[1].removeprefix("DATABASE_URL=").strip("'")
    with psycopg2.connect(new_url, connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute("SELECT session_user")
        assert cur.fetchone() == ("rotated_20260105",)
    conn.close()
    assert oct(env.stat().st_mode & 0o777) == "0o600"
    assert [p.read_text() for p in tmp_path.glob("app.env.*.bak")] == [original]
    flat = " ".join(done.output.split())  # the YAML callback folds long lines
    assert f"The .env files {env} now hold the values of the new user rotated_20260105" in flat
    assert "DATABASE_URL=******** (new value)" in done.output
    new_password = world["server"].sim.postgres[world["names"]["postgres"]].default["password"]
    for secret in (new_password, world["passwords"][leaked], world["key"]):
        assert secret not in done.output


def test_a_missing_env_file_refuses_before_anything_changes(world, tmp_path):
    world["control"].clear_journal()
    refused = rotate(world, tmp_path, credential_rotation_env_files=[
        {"path": str(tmp_path / "absent.env"), "keys": {"DATABASE_URL": "database_url"}}])
    assert refused.rc != 0 and "absent.env does not exist" in refused.output
    assert mutations(world) == []
