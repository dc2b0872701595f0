#!/usr/bin/python
"""A throwaway PostgreSQL cluster to restore backups into; see DOCUMENTATION."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_scratch_cluster
short_description: Start or remove a throwaway PostgreSQL cluster on the control node
description:
  - Restore verification and the conversion's rehearsal restore a backup into a scratch database, never on
    the backed-up server. Without a scratch server of the operator's, this module gives them one.
  - C(state=started) runs C(initdb) in a new temporary directory (or O(base_dir)), configured like Render
    Postgres (connections only over SSL with a self-signed certificate, scram-sha-256 for every login,
    127.0.0.1 on a free port), starts it, and returns its superuser URL (a secret - register the result
    with C(no_log)). An O(base_dir) already holding a cluster is started if needed and reused.
  - C(state=absent) stops the cluster in O(base_dir) and deletes its directory; nothing there is no change.
  - The superuser password reaches initdb through a 0600 file, never a command line. As root, the cluster
    belongs to the C(postgres) OS user and its programs run as it.
options:
  state:
    description: Whether the cluster should run (C(started)) or be gone (C(absent)).
    type: str
    choices: [started, absent]
    default: started
  base_dir:
    description:
      - The cluster's directory. Required for C(absent) (the RV(base_dir) C(started) returned). For C(started),
        empty means a new temporary directory.
    type: path
attributes:
  check_mode:
    support: full
    description: >-
      Changes nothing; C(started) still finds the server binaries, so it fails as the real run would when they
      are missing.
  diff_mode:
    support: none
requirements: [PostgreSQL server binaries (initdb, pg_ctl), openssl]
author: render-key-recovery maintainers
"""

EXAMPLES = r"""
- name: Start a throwaway scratch cluster
  pg_scratch_cluster:
  register: scratch
  no_log: true

- name: Remove it
  pg_scratch_cluster:
    state: absent
    base_dir: "{{ scratch.base_dir }}"
"""

RETURN = r"""
base_dir:
  description: The cluster's directory (empty in check mode when none would exist yet).
  returned: always
  type: str
admin_url:
  description:
    - The superuser's libpq URL (verify-full against the cluster's own CA). A secret - the task registering it
      must be C(no_log). Empty in check mode when no cluster runs yet.
  returned: when O(state=started)
  type: str
server:
  description: The PostgreSQL major version of the server binaries (the name of their versioned directory).
  returned: when O(state=started)
  type: str
"""

import os

from ansible.module_utils import pg_scratch_cluster as scratch
from ansible.module_utils.module_refusal import RefusingModule


def started(base_dir: str | None, check_mode: bool) -> dict:
    existing = bool(base_dir) and os.path.exists(os.path.join(base_dir, scratch.STATE_FILE))
    if existing:
        cluster = scratch.ScratchCluster.load(base_dir)
        changed = not cluster.is_running()
        if changed and not check_mode:
            cluster.start()
    elif check_mode:
        bin_dir = scratch.find_bin_dir()
        return {"changed": True, "base_dir": base_dir or "", "admin_url": "",
                "server": os.path.basename(os.path.dirname(bin_dir))}
    else:
        cluster = scratch.create(base_dir or None)
        changed = True
    return {"changed": changed, "base_dir": cluster.base_dir, "admin_url": cluster.admin_url(),
            "server": cluster.server_major}


def absent(base_dir: str, check_mode: bool) -> dict:
    if check_mode:
        return {"changed": os.path.exists(os.path.join(base_dir, scratch.STATE_FILE)), "base_dir": base_dir}
    return {"changed": scratch.remove(base_dir), "base_dir": base_dir}


def main():
    module = RefusingModule(
        argument_spec={
            "state": {"type": "str", "choices": ["started", "absent"], "default": "started"},
            "base_dir": {"type": "path"},
        },
        required_if=[("state", "absent", ["base_dir"])],
        supports_check_mode=True,
    )
    p = module.params
    try:
        if p["state"] == "started":
            result = started(p["base_dir"], module.check_mode)
        else:
            result = absent(p["base_dir"], module.check_mode)
    except (scratch.ClusterError, OSError) as exc:
        module.fail_json(msg=f"scratch cluster: {exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
