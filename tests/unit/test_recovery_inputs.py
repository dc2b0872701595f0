"""The run's choices and placeholders: a placeholder is always an error, recovery_render
and maintenance take exactly their words, messages never hold the API key."""

import pytest
from ansible.errors import AnsibleFilterError

from filter_plugins.recovery_filters import FilterModule

FILTERS = FilterModule().filters()
SETTINGS = {"render_service_id": "srv-d0abc", "render_postgres_id": "dpg-d0abc-a",
            "render_api_key": "rnd_secretkey", "render_api_base_url": "https://api.render.com/v1"}
ALL = list(SETTINGS)


def test_usable_settings_have_no_problem():
    assert FILTERS["render_settings_problems"](SETTINGS, ALL) == []


@pytest.mark.parametrize("name,value", [("render_service_id", "srv-CHANGE_ME"),
                                        ("render_postgres_id", "dpg-CHANGE_ME"),
                                        ("render_api_key", "CHANGE_ME"),
                                        ("render_api_base_url", "https://CHANGE_ME/v1")])
def test_a_placeholder_is_an_error_needed_or_not(name, value):
    for needed in (ALL, []):
        problems = FILTERS["render_settings_problems"](SETTINGS | {name: value}, needed)
        assert problems == [f"{name} still holds a CHANGE_ME placeholder"]
    message = FILTERS["render_settings_message"](problems)
    assert "recovery_render: false" in message and "no maintenance mode" in message


def test_missing_and_malformed_settings_are_named_without_the_key():
    problems = FILTERS["render_settings_problems"](
        {"render_service_id": "web-app", "render_api_key": 42, "render_api_base_url": "ftp://x"}, ALL)
    assert problems == ["render_service_id must be a Render service id (srv-...), got 'web-app'",
                        "render_postgres_id is not set: it must be a Render Postgres id (dpg-...)",
                        "render_api_key must be a Render API key, got a int",
                        "render_api_base_url must be an http:// or https:// URL, got 'ftp://x'"]
    assert FILTERS["render_settings_problems"]({}, []) == []


@pytest.mark.parametrize("value,expected", [(True, True), (False, False), ("true", True), ("false", False)])
def test_strict_bool_takes_booleans_and_their_words(value, expected):
    assert FILTERS["strict_bool"](value, "recovery_render") is expected


@pytest.mark.parametrize("value", ["yes", "no", "False", "0", 1, "", None, "off"])
def test_strict_bool_refuses_anything_else(value):
    with pytest.raises(AnsibleFilterError, match="recovery_render must be true or false"):
        FILTERS["strict_bool"](value, "recovery_render")


@pytest.mark.parametrize("value,expected", [("on", True), ("off", False), (True, True), (False, False),
                                            ("true", True), ("false", False)])
def test_on_off_takes_exactly_on_off_and_booleans(value, expected):
    assert FILTERS["on_off"](value, "maintenance") is expected


@pytest.mark.parametrize("value", ["yes", "ON", "Off", "onn", "1", 0, "no"])
def test_on_off_refuses_anything_else(value):
    with pytest.raises(AnsibleFilterError, match="maintenance must be on or off"):
        FILTERS["on_off"](value, "maintenance")


@pytest.mark.parametrize("value", [None, ""])
def test_on_off_refuses_a_missing_value(value):
    with pytest.raises(AnsibleFilterError, match="maintenance is required: -e maintenance=on or -e maintenance=off"):
        FILTERS["on_off"](value, "maintenance")


def test_placeholder_error_names_the_variable_not_the_value():
    assert FILTERS["placeholder_error"]("postgresql://CHANGE_ME:pw@h/db", "db_url") == (
        "db_url still holds a CHANGE_ME placeholder (fill in the inventory's vars.yml or vault.yml)")
    assert FILTERS["placeholder_error"]("postgresql://u:pw@h/db", "db_url") == ""


def test_inventory_argument_names_the_run_inventory():
    arg = FILTERS["inventory_argument"]
    assert arg(["/srv/proj/inventories/acc"], "/srv/proj/playbooks") == "-i inventories/acc"
    assert arg(["/srv/proj/inventories/acc/hosts.yml", "/etc/ansible/extra.yml"], "/srv/proj/playbooks/") == (
        "-i inventories/acc/hosts.yml -i /etc/ansible/extra.yml")
    assert arg(["/home/ops/my inv.yml"], "/srv/proj/playbooks") == "-i '/home/ops/my inv.yml'"
    assert arg([], "/srv/proj/playbooks") == "" and arg(None) == ""


def test_role_argument_spec_keeps_the_rules_not_the_defaults():
    document = {"argument_specs": {"main": {"options": {
        "backup_verify_level": {"type": "str", "choices": ["checksum", "toc", "restore"], "default": "restore"},
        "run_report_render": {"type": "bool", "default": "{{ recovery_uses_render }}"},
        "backup_database_url": {"type": "str", "required": True, "no_log": True}}}}}
    assert FILTERS["role_argument_spec"](document) == {
        "backup_verify_level": {"type": "str", "choices": ["checksum", "toc", "restore"]},
        "run_report_render": {"type": "bool"},
        "backup_database_url": {"type": "str", "required": True, "no_log": True}}
    assert FILTERS["role_argument_spec"]({"argument_specs": {"scratch_stop": {}}}, "scratch_stop") == {}
    with pytest.raises(AnsibleFilterError, match="backup has no argument spec for its entry point restor"):
        FILTERS["role_argument_spec"](document, "restor", "backup")


def test_every_role_spec_the_playbooks_check_is_read():
    import pathlib

    import yaml

    for path in pathlib.Path(__file__).resolve().parents[2].glob("roles/*/meta/argument_specs.yml"):
        document = yaml.safe_load(path.read_text())
        for entry in document["argument_specs"]:
            spec = FILTERS["role_argument_spec"](document, entry, path.parts[-3])
            assert all("default" not in option for option in spec.values())


def test_directory_problems_name_the_variable_and_its_path(tmp_path):
    (tmp_path / "a_file").write_text("")
    assert FILTERS["directory_problems"]({"investigate_alembic_versions_dir": str(tmp_path)}) == []
    assert FILTERS["directory_problems"]({"versions": str(tmp_path / "a_file"), "other": "", "absent": None}) == [
        f"versions ({tmp_path / 'a_file'}) is not a directory on the control node",
        "other is empty: it must name an existing directory",
        "absent is empty: it must name an existing directory"]


def test_the_vault_file_comes_from_the_inventory_directory_not_the_environment_name():
    vault = FILTERS["inventory_vault_file"]
    # Both inventories say recovery_environment: production; each has its own vault file.
    for inventory in ("prod-eu", "prod-us"):
        assert vault(f"/srv/proj/inventories/{inventory}", "/srv/proj/playbooks") == (
            f"inventories/{inventory}/group_vars/all/vault.yml")
    assert vault("/etc/ansible/prod", "/srv/proj/playbooks") == "/etc/ansible/prod/group_vars/all/vault.yml"
    assert vault("", "/srv/proj/playbooks") == "" and vault(None) == ""


@pytest.mark.parametrize(("value", "reason"), [
    ("inventories/prod-eu/group_vars/all/vault.yml", ""),
    ("", ""),
    ("inventories/CHANGE_ME/vault.yml", "vault_file still holds a CHANGE_ME placeholder"),
    ("a\nb", "vault_file must be one line"),
    ("{{ nope }}", "vault_file holds an unrendered template"),
    ("inventories/prod/", "vault_file must name a file"),
    (["a"], "vault_file must be a file path (a string), got a list"),
])
def test_vault_file_error_refuses_what_cannot_name_a_file(value, reason):
    found = FILTERS["vault_file_error"](value, "vault_file")
    assert found.startswith(reason) if reason else found == ""


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://u:topsecret@h:5432/db", ""),
    ("postgresql://CHANGE_ME_user:CHANGE_ME@h/db", "backup_database_url still holds a CHANGE_ME placeholder"),
    ("mysql://u:topsecret@h/db", "backup_database_url: database URL must start with postgresql://"),
    ("postgresql://u:topsecret@h:99999/db", "backup_database_url: database URL has an invalid port"),
    ("", "backup_database_url: database URL must be a non-empty string"),
    (None, "backup_database_url: database URL must be a non-empty string"),
])
def test_database_url_problem_names_the_variable_never_the_value(url, expected):
    problem = FILTERS["database_url_problem"](url, "backup_database_url")
    assert problem.startswith(expected) if expected else problem == ""
    assert "topsecret" not in problem
