"""The modules run_report and verify_report: their documentation matches their argument spec."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from unittest import mock

import pytest
from ansible.module_utils import basic

from tests.unit.test_run_report import ROOT

LIBRARY = os.path.join(ROOT, "library")


def load_module(name):
    spec = importlib.util.spec_from_file_location(f"library_{name}", os.path.join(LIBRARY, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Captured(Exception):
    pass


@pytest.mark.parametrize("module_name", ["run_report", "verify_report"])
def test_the_module_documentation_matches_its_argument_spec(module_name):
    captured = {}

    def capture(self, argument_spec, **_kwargs):
        captured.update(argument_spec)
        raise _Captured

    with mock.patch.object(basic.AnsibleModule, "__init__", capture), pytest.raises(_Captured):
        load_module(module_name).main()
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-doc"), "--json", "-t", "module", "-M", LIBRARY,
         module_name], capture_output=True, text=True, check=True, cwd=ROOT,
        env={**os.environ, "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg")})
    doc = json.loads(result.stdout)[module_name]["doc"]
    assert set(doc["options"]) == set(captured)
    for name, actual in captured.items():
        documented = doc["options"][name]
        assert documented.get("type", "str") == actual.get("type", "str"), name
        assert bool(documented.get("required")) == bool(actual.get("required")), name
        if actual.get("default") is not None:
            assert documented.get("default") == actual["default"], name
        assert documented.get("choices") == actual.get("choices"), name
    assert captured["secrets"]["no_log"]
