"""The command lines the report roles pass their modules (run_report, verify_report: module_utils
spells none of this project's commands), rendered from the roles' own task files, so the unit
tests read the words roles/run_report and roles/verify really compose."""

from __future__ import annotations

import pathlib

import jinja2
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]


def role_commands(role: str, module: str, **variables) -> dict:
    """The ``commands`` of the task of roles/<role>/tasks/main.yml that runs ``module``, its
    templates rendered with ``variables`` and the task's own vars."""
    tasks = yaml.safe_load((ROOT / "roles" / role / "tasks" / "main.yml").read_text())
    task = next(task for task in tasks if module in task)
    # Command lines, not HTML: Ansible does not escape them either.
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701
    scope = dict(variables)

    def render(value):
        return environment.from_string(value).render(scope) if isinstance(value, str) else value

    for name, value in (task.get("vars") or {}).items():
        scope[name] = render(value)
    return {name: render(value) for name, value in task[module]["commands"].items()}


def run_report_commands(inventory: str, environment: str, protected=("production",)) -> dict:
    return role_commands("run_report", "run_report", run_report_inventory=inventory,
                         run_report_environment=environment, run_report_protected_environments=list(protected))


def verify_report_commands(inventory: str) -> dict:
    return role_commands("verify", "verify_report", verify_inventory=inventory)
