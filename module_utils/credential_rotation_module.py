"""The main() every credential_rotation_* module shares.

Each of them reads Render (never changes it: creating, updating and deleting are the
render_postgres, render_env_var and render_deploy tasks of the credential_rotation role),
so each returns changed=false. They share the Render options, the instance (by ID or
exact name) and the failure: a RotationError or a RenderAPIError, whose messages never
hold a secret.
"""

from __future__ import annotations

from ansible.module_utils.credential_rotation_api_key import RotationError
from ansible.module_utils.module_refusal import RefusingModule
from ansible.module_utils.render_http import RenderAPIError
from ansible.module_utils.render_module import client_from_module, render_argument_spec


def rotation_argument_spec(**options) -> dict:
    """The Render options, ``postgres`` and the module's own ``options``."""
    spec = render_argument_spec()
    spec["postgres"] = {"type": "str", "required": True}
    spec.update(options)
    return spec


def run_rotation_module(argument_spec: dict, run, *, before_render=None) -> None:
    """Build the module, call ``before_render(module)`` (a check that must pass before the
    key is used), find the instance, exit with ``run(module, client, postgres_id)``."""
    module = RefusingModule(argument_spec=argument_spec, supports_check_mode=True)
    if not module.params["postgres"]:
        module.fail_json(msg="postgres is empty: give the instance ID (dpg-...) or its exact name")
    try:
        if before_render is not None:
            before_render(module)
        client = client_from_module(module)
        postgres_id = client.find_postgres(module.params["postgres"])["id"]
        result = run(module, client, postgres_id)
    except (RotationError, RenderAPIError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)
