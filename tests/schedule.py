"""The order test files start in: longest first.

pytest-xdist (`--dist loadfile --no-loadscope-reorder`, as the Makefile runs it) hands whole
files to the next free worker in collection order; a long file handed out last keeps one
worker busy while the other idles. The seconds are one file's run time on 2 busy cores (from
`--junitxml` of `make test`), rounded; only their order matters, files not listed (the short
ones) keep pytest's order after these. Refresh them when a file grows or shrinks a lot.
"""

from __future__ import annotations

FILE_SECONDS = {
    "tests/scenarios/test_molecule_scenarios.py": 520,
    "tests/integration/test_recover.py": 500,
    "tests/faults/test_fault_render.py": 200,
    "tests/faults/test_fault_kills.py": 180,
    "tests/integration/test_app_proof.py": 180,
    "tests/faults/test_fault_leaks.py": 140,
    "tests/integration/test_investigate.py": 140,
    "tests/integration/test_backup_playbook.py": 140,
    "tests/integration/test_recovery_gates_playbook.py": 130,
    "tests/faults/test_fault_bad_input.py": 120,
    "tests/integration/test_credential_rotation.py": 110,
    "tests/integration/test_playbook_inputs.py": 100,
    "tests/faults/test_fault_writers.py": 90,
    "tests/integration/test_convert_keys_online.py": 400,
    "tests/faults/test_fault_online.py": 70,
    "tests/integration/test_convert_playbook.py": 85,
    "tests/integration/test_convert_kill.py": 60,
    "tests/integration/test_render_modules.py": 55,
    "tests/integration/test_convert_keys_rehearsal.py": 37,
    "tests/integration/test_role_password.py": 35,
    "tests/integration/test_convert_keys_categories.py": 35,
    "tests/integration/test_render_in_flight.py": 33,
    "tests/integration/test_without_render.py": 28,
    "tests/integration/test_verify_runner.py": 28,
    "tests/integration/test_render_roles.py": 27,
}


def file_of(item) -> str:
    return item.nodeid.split("::", 1)[0]


def longest_first(items: list) -> list:
    """Items reordered by their file's expected seconds, longest first; a stable sort, so a
    file's tests stay together and in their order."""
    return sorted(items, key=lambda item: -FILE_SECONDS.get(file_of(item), 0))
