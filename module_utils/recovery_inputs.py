"""The run's choices and placeholders: one rule for every playbook and role.

- A value holding the CHANGE_ME placeholder of the example inventories is always an
  error, never a way to switch a step off.
- Running without Render is an explicit choice, recovery_render: false; anything but
  a boolean (or the words true/false an -e gives) is refused.
- Choices such as maintenance=on|off accept exactly their words (and booleans).
- Every role's inputs are checked before a playbook's first change, against the
  role's own meta/argument_specs.yml (role_argument_spec gives the rules to check).

- Where the run's inventory keeps its vault (to name it in the operator's next action)
  comes from the inventory the host was read from, never from the environment's name.

Messages name the variable and never hold the value of a secret. The filter plugin
filter_plugins/recovery_filters.py loads this file, so playbooks and modules share it.
"""

from __future__ import annotations

import os
import re
import shlex

PLACEHOLDER = "CHANGE_ME"
# Where the example inventories keep their vault, under the inventory's directory.
INVENTORY_VAULT = os.path.join("group_vars", "all", "vault.yml")

# What running without Render leaves out, said wherever the choice is offered or reported.
WITHOUT_RENDER = "no maintenance mode, no deploy, no health check and no credential rotation"
RENDER_OFF_HINT = (f"fill them in (the inventory's vars.yml or vault.yml), or set recovery_render: false to run "
                   f"without Render ({WITHOUT_RENDER})")

# name: (pattern the value must match or None, what it must be, whether it is a secret)
RENDER_SETTINGS = {
    "render_service_id": (r"^srv-[a-z0-9]+$", "a Render service id (srv-...)", False),
    "render_postgres_id": (r"^dpg-[a-z0-9]+(-[a-z])?$", "a Render Postgres id (dpg-...)", False),
    "render_api_key": (None, "a Render API key", True),
    "render_api_base_url": (r"^https?://\S+$", "an http:// or https:// URL", False),
}


class InputError(ValueError):
    """A refused input; the message names the variable, never a secret value."""


def has_placeholder(value) -> bool:
    return isinstance(value, str) and PLACEHOLDER in value


def placeholder_error(value, name: str) -> str:
    """The reason value is unusable because it is (or holds) the placeholder; "" otherwise."""
    if has_placeholder(value):
        return f"{name} still holds a {PLACEHOLDER} placeholder (fill in the inventory's vars.yml or vault.yml)"
    return ""


def _describe(value, secret: bool) -> str:
    return "(hidden)" if secret else repr(value)


def strict_bool(value, name: str) -> bool:
    """A boolean, or the words true/false as -e name=... gives them; anything else is refused
    (yes, on, 1, a typo), so a mistyped choice never silently means false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    raise InputError(f"{name} must be true or false, got {_describe(value, False)}")


def on_off(value, name: str) -> bool:
    """on/off, or a boolean (true/false): True for on. Anything else (yes, ON, a typo,
    nothing at all) is refused."""
    if value is None or value == "":
        raise InputError(f"{name} is required: -e {name}=on or -e {name}=off")
    if isinstance(value, str) and value in ("on", "off"):
        return value == "on"
    try:
        return strict_bool(value, name)
    except InputError:
        raise InputError(f"{name} must be on or off (or true/false), got {_describe(value, False)}; "
                         "nothing was changed") from None


def render_settings_problems(settings: dict, needed=()) -> list[str]:
    """Why the Render settings cannot be used, one line each; [] when they can.

    settings maps the render_* names to their values (None when not set). Every name in
    needed must be set; every value given, needed or not, must not be a placeholder and
    must have its shape."""
    problems = []
    for name, (pattern, what, secret) in RENDER_SETTINGS.items():
        value = settings.get(name)
        if value is None or value == "":
            if name in needed:
                problems.append(f"{name} is not set: it must be {what}")
            continue
        if not isinstance(value, str):
            problems.append(f"{name} must be {what}, got a {type(value).__name__}")
        elif has_placeholder(value):
            problems.append(f"{name} still holds a {PLACEHOLDER} placeholder")
        elif pattern and not re.match(pattern, value):
            problems.append(f"{name} must be {what}, got {_describe(value, secret)}")
    unknown = set(needed) - set(RENDER_SETTINGS)
    if unknown:
        raise InputError(f"unknown Render settings: {', '.join(sorted(unknown))}")
    return problems


def render_settings_message(problems: list[str]) -> str:
    """One message for the operator: every problem, then the two ways out."""
    return f"{'; '.join(problems)}: {RENDER_OFF_HINT}" if problems else ""


def inventory_argument(sources, playbook_dir: str = "") -> str:
    """The -i option(s) that name the run's inventory (ansible_inventory_sources) in a command
    the operator pastes from the project root: relative to it when inside it. "" when unknown,
    so that the message says "your inventory" rather than guess a path."""
    options = []
    for source in sources if isinstance(sources, list | tuple) else []:
        if not isinstance(source, str) or not source:
            continue
        options.append("-i " + shlex.quote(_from_project_root(source, playbook_dir)))
    return " ".join(options)


def role_argument_spec(document, entry: str = "main", role: str = "the role") -> dict:
    """The options of a role's entry point, from its parsed meta/argument_specs.yml, to check
    the values a playbook will pass before the role runs (validate_argument_spec).

    Without their top-level defaults: a default is the role's own value, often a template of
    other variables that only the role resolves (a lookup's text is never templated), never
    an input to refuse. Required options, types and choices stay as the role declares them."""
    specs = (document or {}).get("argument_specs") if isinstance(document, dict) else None
    if not isinstance(specs, dict) or entry not in specs:
        raise InputError(f"{role} has no argument spec for its entry point {entry}")
    options = specs[entry].get("options") or {}
    return {name: {key: value for key, value in option.items() if key != "default"}
            for name, option in options.items()}


def directory_problems(paths: dict) -> list[str]:
    """Why each named path is not an existing directory on the control node, one line each;
    [] when all are. paths maps the variable's name to its value."""
    problems = []
    for name, path in (paths or {}).items():
        if not isinstance(path, str) or not path:
            problems.append(f"{name} is empty: it must name an existing directory")
        elif not os.path.isdir(path):
            problems.append(f"{name} ({path}) is not a directory on the control node")
    return problems


def _from_project_root(path: str, playbook_dir: str) -> str:
    """path as the operator sees it from the project root (the playbooks' parent): relative
    to it when inside it, else as it is."""
    root = os.path.dirname(os.path.normpath(playbook_dir)) if playbook_dir else ""
    path = os.path.normpath(path)
    if root and os.path.isabs(path) and path.startswith(root + os.sep):
        return os.path.relpath(path, root)
    return path


def inventory_vault_file(inventory_dir, playbook_dir: str = "") -> str:
    """The vault file of the inventory the host was read from (Ansible's inventory_dir):
    <that directory>/group_vars/all/vault.yml, relative to the project root when inside it.
    Two inventories never share it, whatever their recovery_environment says. "" when the
    host came from no inventory directory, so that messages say "your inventory's vault
    file" rather than guess a path."""
    if not isinstance(inventory_dir, str) or not inventory_dir.strip():
        return ""
    return _from_project_root(os.path.join(inventory_dir, INVENTORY_VAULT), playbook_dir)


def vault_file_error(value, name: str) -> str:
    """Why value cannot name a vault file in the operator's next action; "" when it can
    ("" itself: unknown, the message then says "your inventory's vault file")."""
    if not isinstance(value, str):
        return f"{name} must be a file path (a string), got a {type(value).__name__}"
    if has_placeholder(value):
        return placeholder_error(value, name)
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        return f"{name} must be one line of printable characters"
    if "{{" in value or "{%" in value:
        return f"{name} holds an unrendered template: {value!r}"
    if len(value) > 1024 or value.endswith(("/", os.sep)):
        return f"{name} must name a file, got {value[:80]!r}"
    return ""
