"""Every module's documentation, as ansible-doc resolves it (fragments included),
matches the argument spec the module really builds: names, types, required,
defaults, choices, and no_log on every secret."""

import importlib.util
import json
import os
import subprocess
import sys
from unittest import mock

import pytest
from ansible.module_utils import basic

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIBRARY = os.path.join(ROOT, "library")
MODULES = sorted(name[:-3] for name in os.listdir(LIBRARY) if name.endswith(".py"))
SECRETS = {"api_key", "database_url", "login_password", "value", "scratch_url", "url", "secrets"}


class _Captured(Exception):
    pass


def argument_spec_of(name: str) -> dict:
    """The spec the module hands AnsibleModule, captured without running it."""
    spec = importlib.util.spec_from_file_location(f"library_{name}", os.path.join(LIBRARY, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    captured = {}

    def capture(self, argument_spec, **_kwargs):
        captured.update(argument_spec)
        raise _Captured

    with mock.patch.object(basic.AnsibleModule, "__init__", capture), pytest.raises(_Captured):
        module.main()
    return captured


@pytest.fixture(scope="module")
def documentation():
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-doc"), "--json", "-t", "module", *MODULES],
        capture_output=True, text=True, check=True, cwd=ROOT,
        env={**os.environ, "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg")})
    return {name: entry["doc"] for name, entry in json.loads(result.stdout).items()}


@pytest.mark.parametrize("name", MODULES)
def test_documentation_matches_the_argument_spec(name, documentation):
    doc = documentation[name]
    arguments = argument_spec_of(name)
    assert set(doc["options"]) == set(arguments), name
    for option, documented in doc["options"].items():
        actual = arguments[option]
        assert documented.get("type", "str") == actual.get("type", "str"), option
        assert bool(documented.get("required")) == bool(actual.get("required")), option
        if actual.get("default") is not None:
            assert documented.get("default") == actual["default"], option
        assert documented.get("choices") == actual.get("choices"), option
        assert sorted(documented.get("aliases", [])) == sorted(actual.get("aliases", [])), option
        if option in SECRETS:
            assert actual.get("no_log") is True, f"{name}: {option} must be no_log"
    assert doc.get("short_description") and doc.get("description")
    assert doc.get("attributes", {}).get("check_mode") or name.startswith("render_"), name
