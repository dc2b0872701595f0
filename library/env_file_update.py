#!/usr/bin/python
"""Ansible module: set named keys of an existing local .env file, secrets never shown."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: env_file_update
short_description: Set named keys of an existing .env file, atomically, at mode 0600
description:
  - Rewrites only the keys of O(values) in the C(KEY=value) file O(path) (every occurrence; a key the file
    lacks is appended); comments, order, other keys, C(export) prefixes and trailing comments stay. Values
    are quoted as needed (bare, single or double quotes).
  - Writes a temporary file in the same directory, then renames it over O(path), mode 0600. With
    O(backup), the old file is kept first as C(<path>.<UTC timestamp>.bak), mode 0600.
  - C(changed) only when a value differs (or the mode was not 0600).
  - Refuses a missing file, a symbolic link or anything that is not a regular file, with a clear message.
  - Values are never returned nor shown; the diff names the changed keys with masked values.
options:
  path:
    description: The .env file. It must exist.
    type: path
    required: true
  values:
    description: "C({KEY: value}) to set. Never logged."
    type: dict
    required: true
  backup:
    description: Keep the old file as C(<path>.<UTC timestamp>.bak) (mode 0600) before a change.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Reads the file and reports which keys would change; writes nothing.
  diff_mode:
    support: full
    description: Key names only, values masked.
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Give the app's .env the new database URL
  env_file_update:
    path: /srv/app/.env
    values:
      DATABASE_URL: "{{ new_database_url }}"
"""

RETURN = r"""
path:
  description: The file.
  returned: always
  type: str
changed_keys:
  description: Keys whose value changed.
  returned: always
  type: list
  elements: str
added_keys:
  description: Keys appended (the file lacked them).
  returned: always
  type: list
  elements: str
unchanged_keys:
  description: Keys that already had the value.
  returned: always
  type: list
  elements: str
mode_fixed:
  description: Whether the file's mode was not 0600 (it is now).
  returned: always
  type: bool
backup_file:
  description: The backup of the old file, when one was written.
  returned: always
  type: str
"""

from ansible.module_utils.env_file import EnvFileError, masked_diff, update_env_file
from ansible.module_utils.module_refusal import RefusingModule


def main():
    module = RefusingModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "values": {"type": "dict", "required": True, "no_log": True},
            "backup": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        outcome = update_env_file(path, module.params["values"], check_mode=module.check_mode,
                                  backup=module.params["backup"])
    except EnvFileError as exc:
        module.fail_json(msg=str(exc), path=path)
    except OSError as exc:  # the text of an OSError names the file, never a value
        module.fail_json(msg=f"{path} could not be rewritten: {exc.strerror or exc}", path=path)
    if module._diff and outcome["changed"]:
        outcome["diff"] = masked_diff(path, outcome["changed_keys"], outcome["added_keys"])
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
