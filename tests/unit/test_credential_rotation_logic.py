"""The rotation's decisions: the API key check, the new user's name, what is left to do
(which services still need a deploy), the URLs built from the new connection info, and the
proof that a leaked password is dead."""

import hashlib

import pytest
from ansible.module_utils.credential_rotation import (
    STEPS,
    RotationError,
    busy_users,
    deploy_decision,
    derive_username,
    is_authentication_failure,
    leaked_login_proof,
    operator_actions,
    parse_time,
    plan_rotation,
    rotation_urls,
    still_listed,
    url_username,
    validate_usernames,
    with_credentials,
)
from ansible.module_utils.credential_rotation_api_key import (
    api_key_fingerprint,
    check_api_key,
    leaked_api_key_error,
    leaked_key_index,
    normalize_fingerprints,
)
from ansible.module_utils.pg_url import database_url_params

KEY = "rnd_live_example_key_0123456789"
FP = hashlib.sha256(KEY.encode()).hexdigest()
OTHER_FP = hashlib.sha256(b"another key").hexdigest()


def creds(*users, default=None, connections=None, created=None):
    connections, created = connections or {}, created or {}
    return [{"username": u, "default": u == default, "openConnections": connections.get(u, 0),
             **({"createdAt": created[u]} if u in created else {})} for u in users]


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
    assert "(your inventory's vault file)" in message
    with pytest.raises(RotationError, match=r"\(ansible-vault edit inventories/prod-eu/group_vars/all/vault.yml\)"):
        check_api_key(KEY, [FP], "inventories/prod-eu/group_vars/all/vault.yml")


def test_a_key_that_is_not_leaked_passes():
    assert leaked_key_index(KEY, [OTHER_FP]) is None
    check_api_key(KEY, [OTHER_FP])
    check_api_key(KEY, [])


def test_the_key_check_as_a_message_for_the_playbooks_filter():
    # recover.yml's refusal before its first change: the same check, the same normalisation.
    assert leaked_api_key_error(KEY, [OTHER_FP]) == ""
    message = leaked_api_key_error(KEY, [f" sha256:{FP.upper()}"], None)
    assert message.startswith("the Render API key in use matches leaked fingerprint #1") and KEY not in message
    assert "is not a SHA-256" in leaked_api_key_error(KEY, [KEY]) and KEY not in leaked_api_key_error(KEY, [KEY])


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
                             vault_file="inventories/prod-eu/group_vars/all/vault.yml", proof=["proven"])
    assert moved[1] == "proven"
    assert "vault_recovery_database_url in inventories/prod-eu/group_vars/all/vault.yml (ansible-vault" in moved[2]
    unknown = operator_actions(rotated=True, database_url_changed=True, new_user="app_new", deleted=["app_a"])
    assert "vault_recovery_database_url in your inventory's vault file" in unknown[1]


# -- which services still need a deploy ------------------------------------------------------------

USER_MADE = "2026-01-05T10:00:00.000000Z"
AFTER = {"id": "dep-after", "status": "live", "createdAt": "2026-01-05T10:00:30.5Z"}
ON_NEW = creds("app_a", "app_new", default="app_new", connections={"app_new": 1}, created={"app_new": USER_MADE})


def decide(variable_users=("app_new",), newest=AFTER, credentials=ON_NEW, create=False):
    return deploy_decision("srv-x", list(variable_users), newest, new_user="app_new", credentials=credentials,
                           create_user=create)


def test_a_live_deploy_made_after_the_new_user_and_logging_in_as_it_is_not_repeated():
    decision = decide()
    assert decision["deploy"] is False and decision["live_deploy"] == "dep-after"
    assert "1 connection(s) log in as app_new" in decision["reason"]


@pytest.mark.parametrize(("case", "reason"), [
    ({"create": True}, "app_new is still to be created"),
    ({"variable_users": ["app_new", "app_a"]}, "its variables move to app_new in this run"),
    ({"variable_users": []}, "its variables move to app_new"),
    ({"newest": None}, "it has no deploy"),
    ({"newest": {**AFTER, "status": "update_failed"}}, "its newest deploy dep-after is update_failed"),
    ({"newest": {**AFTER, "status": "build_in_progress"}}, "is build_in_progress"),
    ({"newest": {**AFTER, "createdAt": "2026-01-05T09:59:59Z"}}, "was made before app_new existed"),
    ({"newest": {**AFTER, "createdAt": "garbage"}}, "when its live deploy dep-after and app_new were made is not"),
    ({"credentials": creds("app_new", default="app_new", connections={"app_new": 1})}, "were made is not known"),
    ({"credentials": creds("app_new", default="app_new", created={"app_new": USER_MADE})}, "nothing logs in as"),
])
def test_a_deploy_is_made_unless_the_new_user_is_proven_live(case, reason):
    decision = decide(**case)
    assert decision["deploy"] is True and reason in decision["reason"]


def test_timestamps_with_z_offsets_and_long_fractions_compare():
    assert parse_time("2026-01-05T10:00:00.123456789Z") > parse_time("2026-01-05T10:00:00Z")
    assert parse_time("2026-01-05T11:00:00+01:00") == parse_time("2026-01-05T10:00:00Z")
    assert parse_time("2026-01-05T10:00:00") == parse_time("2026-01-05T10:00:00Z")
    assert parse_time(None) is None and parse_time("") is None


def test_a_rerun_after_the_deploy_went_live_only_drains_and_deletes():
    listed = creds("app_a", "app_new", default="app_new", connections={"app_new": 2}, created={"app_new": USER_MADE})
    plan = plan_rotation(listed, ["app_a", "app_b"], prefix="app", run_id="20260106",
                         env_users={"srv-x DATABASE_URL": "app_new"}, newest_deploys={"srv-x": AFTER})
    assert plan["rotate"] and not plan["create_user"] and plan["env_to_update"] == []
    assert plan["steps"] == ["wait_default", "read_connection_info", "wait_idle", "delete_leaked_users",
                             "verify_deleted"]
    assert [d["deploy"] for d in plan["deploys"]] == [False]
    assert "srv-x: no deploy (its live deploy dep-after was made after app_new existed" in plan["summary"]
    assert plan["summary"].startswith("rotate: leaked users app_a -> existing user app_new; steps: wait_default")


def test_a_rerun_after_the_variable_moved_but_before_the_deploy_deploys_once():
    before = {**AFTER, "id": "dep-old", "createdAt": "2026-01-01T00:00:00Z"}
    listed = creds("app_a", "app_new", default="app_new", created={"app_new": USER_MADE})
    plan = plan_rotation(listed, ["app_a"], prefix="app", run_id="1", env_users={"srv-x DATABASE_URL": "app_new",
                                                                                  "srv-y DATABASE_URL": "app_a"},
                         newest_deploys={"srv-x": before, "srv-y": AFTER})
    assert "update_env_vars" in plan["steps"] and "deploy" in plan["steps"]
    assert [(d["service"], d["deploy"]) for d in plan["deploys"]] == [("srv-x", True), ("srv-y", True)]


# -- the leaked password is dead ----------------------------------------------------------------

def test_a_leaked_password_is_dead_only_when_the_server_refuses_it_for_its_password():
    refused = 'connection to server failed: FATAL:  password authentication failed for user "app_b"'
    assert is_authentication_failure(refused) and is_authentication_failure(Exception(refused))
    assert "leaked password of app_b is rejected" in leaked_login_proof("app_b", refused)
    with pytest.raises(RotationError, match="app_b still logs in"):
        leaked_login_proof("app_b", None)
    with pytest.raises(RotationError, match=r"could not be proven dead .*Connection refused"):
        leaked_login_proof("app_b", "could not connect to server: Connection refused\nmore")
