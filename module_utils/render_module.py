"""The glue every Render module shares: its common options and its main().

api_key and base_url are the Render connection every module takes; an empty or unset
base_url is Render's own, render_http.DEFAULT_BASE_URL (stated nowhere else).
"""

from __future__ import annotations

from ansible.module_utils.module_refusal import RefusingModule
from ansible.module_utils.redaction import MASK
from ansible.module_utils.render_api import RenderClient
from ansible.module_utils.render_http import HAS_REQUESTS, RenderAPIError


def render_argument_spec():
    """Options every Render module shares."""
    from ansible.module_utils.basic import env_fallback

    return {
        "api_key": {"type": "str", "no_log": True, "required": True,
                    "fallback": (env_fallback, ["RENDER_API_KEY"])},
        # No default here: empty or unset means DEFAULT_BASE_URL, its one home (RenderHTTP).
        "base_url": {"type": "str", "fallback": (env_fallback, ["RENDER_API_BASE_URL"])},
        "timeout": {"type": "float", "default": 30.0},
        "in_flight_wait": {"type": "float"},
        "max_attempts": {"type": "int", "default": 5},
    }


def run_module(argument_spec: dict, run) -> None:
    """The whole main() of a Render module: build it, run ``run(module, client)``,
    exit with its result, or fail with the API error (which never holds the key)."""
    module = RefusingModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        module.exit_json(**run(module, client_from_module(module)))
    except RenderAPIError as exc:
        module.fail_json(msg=str(exc), status=exc.status)


def client_from_module(module):
    """A RenderClient from module params, or fail_json with a message an operator can act on."""
    if not HAS_REQUESTS:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(msg=missing_required_lib("requests"))
    params = module.params
    return RenderClient(params["api_key"], params["base_url"], timeout=params["timeout"],
                        max_attempts=params["max_attempts"], in_flight=params["in_flight_wait"])


def masked(value):
    """What a diff or a result shows instead of a secret."""
    return None if value is None else MASK
