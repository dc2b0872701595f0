"""The rotation's decisions: the API key check, the new user's name, what is left to do,
and the URLs built from the new connection info."""

import hashlib

import pytest
from ansible.module_utils.credential_rotation import (
    STEPS,
    RotationError,
    api_key_fingerprint,
    busy_users,
    check_api_key,
    derive_username,
    leaked_key_index,
    normalize_fingerprints,
    operator_actions,
    plan_rotation,
    rotation_urls,
    still_listed,
    url_username,
    validate_usernames,
    with_credentials,
)
from ansible.module_utils.pg_url import database_url_params

KEY = "rnd_live_example_key_0123456789"
FP = hashlib.sha256(KEY.encode()).hexdigest()
OTHER_FP = hashlib.sha256(b"another key").hexdigest()


def creds(*users, default=None, connections=None):
    connections = connections or {}
    return [{"username": u, "default": u == default, "openConnections": connections.get(u, 0)} for u in users]


# -- the API key ---------------------------------------------------------------------------

def test_fingerprint_is_sha256_hex_of_the_key():
    assert api_key_fingerprint(KEY) == FP
    assert len(FP) == 64


def test_fingerprints_are_normalized_and_deduplicated():
    assert normalize_fingerprints([f"  SHA256:{FP.upper()} ", FP, OTHER_FP]) == [FP, OTHER_FP]


def test_a_fingerprint_that_is_not_a_digest_is_refused_without_echoing_it():
    with pytest.raises(RotationError, match="fingerprint #2 is not a SHA-256") as caught:
        normalize_fingerprints([FP, KEY])
    assert KEY not in str(caught.value)


def test_the_key_in_use_matching_a_leaked_fingerprint_fails_with_what_to_do():
    assert leaked_key_index(KEY, [OTHER_FP, FP]) == 2
    with pytest.raises(RotationError) as caught:
        check_api_key(KEY, [OTHER_FP, FP])
    message = str(caught.value)
    assert "fingerprint #2" in message and "revoke it in the Render Dashboard" in message
    assert "vault_render_api_key" in message and KEY not in message


def test_a_key_that_is_not_leaked_passes():
    assert leaked_key_index(KEY, [OTHER_FP]) is None
    check_api_key(KEY, [OTHER_FP])
    check_api_key(KEY, [])


# -- users ---------------------------------------------------------------------------------------

def test_usernames_are_validated_and_deduplicated():
    assert validate_usernames(["app_a", "app_b", "app_a"]) == ["app_a", "app_b"]
    for bad in ("App", "1app", "app-x", "", "a" * 64, None):
        with pytest.raises(RotationError, match="not a Render username"):
            validate_usernames([bad])


def test_the_new_name_comes_from_the_run_id_and_avoids_listed_users():
    assert derive_username("app", "20260105T101500Z") == "app_20260105t101500z"
    assert derive_username("app", "2026-01-05") == "app_20260105"
    assert derive_username("app", "2026-01-05", taken=["app_20260105"]) == "app_20260105_2"
    assert derive_username("app", "2026-01-05", taken=["app_20260105", "app_20260105_2"]) == "app_20260105_3"
    long = derive_username("a" * 60, "20260105")
    assert len(long) == 63 and validate_usernames([long])
    with pytest.raises(RotationError, match="no letter or digit"):
        derive_username("app", "--")


def test_url_username_reads_the_user_and_never_raises():
    assert url_username("postgresql://app_b:pw@dpg-x-a/db") == "app_b"
    assert url_username("postgresql://app_b:pw@host/db?user=app_c") == "app_c"
    assert url_username("not a url") is None
    assert url_username(None) is None


# -- the plan ----------------------------------------------------------------------------------

def test_first_run_creates_a_user_and_runs_every_step_in_order():
    plan = plan_rotation(creds("owner", "app_a", "app_b", default="app_b"), ["app_a", "app_b"],
                         prefix="app", run_id="20260105", env_users={"srv-x DATABASE_URL": "app_b"})
    assert plan["rotate"] and plan["create_user"]
    assert plan["new_user"] == "app_20260105"
    assert plan["remaining"] == ["app_a", "app_b"] and plan["gone"] == []
    assert plan["steps"] == list(STEPS)
    assert plan["steps"].index("deploy") < plan["steps"].index("wait_idle") < plan["steps"].index(
        "delete_leaked_users")
    assert plan["env_on_leaked"] == ["srv-x DATABASE_URL"]
    assert plan["env_to_update"] == ["srv-x DATABASE_URL"]


def test_an_interrupted_run_reuses_the_user_it_created():
    # It created app_20260105 (now the default) and stopped before the deploy; re-run a day later.
    plan = plan_rotation(creds("app_a", "app_b", "app_20260105", default="app_20260105"), ["app_a", "app_b"],
                         prefix="app", run_id="20260106", env_users={"srv-x DATABASE_URL": "app_20260105"})
    assert plan["rotate"] and not plan["create_user"]
    assert plan["new_user"] == "app_20260105"
    assert "create_user" not in plan["steps"] and "deploy" in plan["steps"]
    assert plan["env_to_update"] == []


def test_half_deleted_leaked_users_still_need_the_rest():
    plan = plan_rotation(creds("app_b", "app_new", default="app_new"), ["app_a", "app_b"],
                         prefix="app", run_id="x1")
    assert plan["rotate"] and plan["remaining"] == ["app_b"] and plan["gone"] == ["app_a"]


def test_nothing_to_do_once_no_leaked_user_is_left():
    plan = plan_rotation(creds("owner", "app_new", default="app_new"), ["app_a", "app_b"], prefix="app",
                         run_id="20260107", env_users={"srv-x DATABASE_URL": "app_new"})
    assert not plan["rotate"] and not plan["create_user"]
    assert plan["steps"] == [] and plan["env_to_update"] == []
    assert plan["gone"] == ["app_a", "app_b"]


def test_a_variable_still_on_a_deleted_leaked_user_is_work():
    plan = plan_rotation(creds("app_new", default="app_new"), ["app_a"], prefix="app", run_id="1",
                         env_users={"srv-x DATABASE_URL": "app_a"})
    assert plan["rotate"] and plan["new_user"] == "app_new"
    assert plan["env_on_leaked"] == ["srv-x DATABASE_URL"]


def test_the_new_user_may_not_be_a_leaked_one():
    with pytest.raises(RotationError, match="is one of the leaked users"):
        plan_rotation(creds("app_b", default="app_b"), ["app_b", "app_1"], prefix="app", run_id="1")


def test_busy_and_listed_users():
    listed = creds("app_a", "app_b", "app_new", default="app_new", connections={"app_a": 2, "app_new": 5})
    assert busy_users(listed, ["app_a", "app_b"]) == {"app_a": 2}
    assert still_listed(listed, ["app_a", "gone"]) == ["app_a"]


# -- URLs ----------------------------------------------------------------------------------------

INFO = {"password": "fake/p@ss",
        "internalConnectionString": "postgresql://app_new:fake%2Fp%40ss@dpg-x-a/appdb",
        "externalConnectionString": "postgresql://app_new:fake%2Fp%40ss@dpg-x-a.oregon-postgres.render.com/appdb"}
RECOVERY = "postgresql://app_b:old@db.example.com:5432/appdb?sslmode=verify-full&sslrootcert=/ca.crt"


def test_with_credentials_keeps_host_and_options_and_drops_query_credentials():
    url = with_credentials(RECOVERY + "&password=x&user=y", "app_new", "fake/p@ss")
    params = database_url_params(url)
    assert (params["login_user"], params["login_password"]) == ("app_new", "fake/p@ss")
    assert (params["login_host"], params["login_port"], params["login_db"]) == ("db.example.com", 5432, "appdb")
    assert (params["ssl_mode"], params["ca_cert"]) == ("verify-full", "/ca.crt")


def test_the_run_url_moves_to_the_new_user_only_when_it_used_a_leaked_one():
    moved = rotation_urls(INFO, "app_new", ["app_a", "app_b"], database_url=RECOVERY)
    assert moved["env_value"] == INFO["internalConnectionString"]
    assert moved["database_url_changed"] is True
    assert database_url_params(moved["database_url"])["login_user"] == "app_new"
    assert database_url_params(moved["database_url"])["login_password"] == "fake/p@ss"

    owner_url = RECOVERY.replace("app_b:old", "owner:secret")
    kept = rotation_urls(INFO, "app_new", ["app_a", "app_b"], database_url=owner_url, env_connection_string="external")
    assert kept["env_value"] == INFO["externalConnectionString"]
    assert kept["database_url"] == owner_url and kept["database_url_changed"] is False
    assert database_url_params(kept["login_url"])["login_user"] == "app_new"


def test_connection_info_for_another_user_is_refused():
    with pytest.raises(RotationError, match="is for user app_new, not the new default user app_other"):
        rotation_urls(INFO, "app_other", ["app_a"])
    with pytest.raises(RotationError, match="no internalConnectionString"):
        rotation_urls({"password": "x"}, "app_new", ["app_a"])


def test_operator_actions_name_the_vault_variable_only_when_needed():
    assert operator_actions(rotated=False, database_url_changed=False, new_user=None, deleted=[]) == []
    kept = operator_actions(rotated=True, database_url_changed=False, new_user="app_new", deleted=["app_a"])
    assert len(kept) == 1 and "app_a" in kept[0]
    moved = operator_actions(rotated=True, database_url_changed=True, new_user="app_new", deleted=["app_a"],
                             environment="production")
    assert "vault_recovery_database_url in inventories/production/group_vars/all/vault.yml" in moved[1]
