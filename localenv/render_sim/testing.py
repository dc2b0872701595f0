"""Helpers for tests that run against the simulator: unique worlds, control calls, cleanup,
and validation of the request journal against Render's OpenAPI spec."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import uuid

import requests

from localenv.render_sim import start
from localenv.render_sim.common import PROJECT_ROOT

SPEC_PATH = os.path.join(os.path.dirname(PROJECT_ROOT), "shared", "reference", "render-openapi.json")


def ids(suffix: str) -> dict:
    """Render-shaped IDs and names unique to one test (roles and databases are cluster-wide)."""
    pad = (suffix + "0" * 20)[:20]
    return {
        "owner": "tea-" + pad,
        "service": "srv-" + pad,
        "worker": "srv-w" + pad[:19],
        "postgres": f"dpg-{pad}-a",
        "database": f"sim_{suffix}",
        "user": f"sim_{suffix}_owner",
    }


def make_state(*, pre_deploy_command: str | None = None, step_seconds: float = 0.05,
               rate_limits: dict | None = None, env: dict | None = None,
               credential_delay: float = 0.0) -> tuple[dict, dict]:
    """A small world: one web service on one Postgres instance, one background worker."""
    suffix = uuid.uuid4().hex[:10]
    names = ids(suffix)
    env_vars = [{"key": "DATABASE_URL", "fromDatabase": {"id": names["postgres"],
                                                         "property": "connectionString"}}]
    env_vars += [{"key": k, "value": v} for k, v in (env or {}).items()]
    state = {
        "owner": {"id": names["owner"], "name": "Test team", "email": "ops@example.com", "type": "team"},
        "timings": {"step_seconds": step_seconds, "health_timeout": 15, "credential_delay": credential_delay},
        "rate_limits": dict(rate_limits or {}),
        "postgres": [{"id": names["postgres"], "name": f"db-{suffix}", "databaseName": names["database"],
                      "databaseUser": names["user"]}],
        "services": [
            {"id": names["service"], "name": f"api-{suffix}", "type": "web_service",
             "preDeployCommand": pre_deploy_command or "", "healthCheckPath": "/health",
             "envVars": env_vars},
            {"id": names["worker"], "name": f"worker-{suffix}", "type": "background_worker",
             "envVars": [{"key": "QUEUE", "value": "default"}]},
        ],
    }
    return state, names


def drop_world(cluster, server) -> None:
    """Drop the databases and every role the simulator made (the cluster is shared)."""
    import psycopg2
    from psycopg2 import sql

    roles = set()
    databases = set()
    for instance in server.sim.postgres.values():
        databases.add(instance.database)
        roles.update(c["username"] for c in instance.credentials)
        if instance.owner_role != cluster.app_user:
            roles.add(instance.owner_role)
    roles.discard(cluster.app_user)
    conn = psycopg2.connect(cluster.admin_url())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for database in databases:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            for role in roles:
                with contextlib.suppress(psycopg2.Error):
                    cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    finally:
        conn.close()


@contextlib.contextmanager
def running(cluster, **state_options):
    """A simulator with a fresh world; yields (server, names, api_key)."""
    state, names = make_state(**state_options)
    key = "rnd_test_" + secrets.token_urlsafe(16)
    server = start(state, cluster, api_key=key)
    try:
        yield server, names, key
    finally:
        server.stop()
        drop_world(cluster, server)


class Control:
    """The test-only /__sim__ endpoints."""

    def __init__(self, server, key: str):
        # A SimServer, or the base URL (.../v1) of one running elsewhere (python -m localenv up).
        port = server.port if hasattr(server, "port") else int(server.rsplit(":", 1)[1].split("/", 1)[0])
        self.root = f"http://127.0.0.1:{port}/__sim__"
        self.headers = {"Authorization": f"Bearer {key}"}

    def faults(self, operation: str, faults: list[dict]) -> None:
        resp = requests.post(f"{self.root}/faults", json={"operation": operation, "faults": faults},
                             headers=self.headers, timeout=10)
        resp.raise_for_status()

    def clear_faults(self) -> None:
        requests.delete(f"{self.root}/faults", headers=self.headers, timeout=10).raise_for_status()

    def journal(self) -> list[dict]:
        resp = requests.get(f"{self.root}/journal", headers=self.headers, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def clear_journal(self) -> None:
        requests.delete(f"{self.root}/journal", headers=self.headers, timeout=10).raise_for_status()

    def webhooks(self) -> list[dict]:
        """What the webhook receiver got: [{"name", "body"}], oldest first."""
        resp = requests.get(f"{self.root}/webhooks", headers=self.headers, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def app_faults(self, service: str, faults: list[dict]) -> None:
        """What the service's app answers instead, e.g. [{"path": "/api/deals", "method": "POST", "status": 500}]."""
        resp = requests.put(f"{self.root}/app-faults", json={"service": service, "faults": faults},
                            headers=self.headers, timeout=10)
        resp.raise_for_status()

    def log(self, resource: str, *lines: str, log_type: str = "app", level: str = "error") -> None:
        """Log lines as if the resource wrote them now."""
        resp = requests.post(f"{self.root}/logs", json={"resource": resource, "lines": list(lines),
                                                        "type": log_type, "level": level},
                             headers=self.headers, timeout=10)
        resp.raise_for_status()

    def rate_limits(self, **limits) -> dict:
        resp = requests.put(f"{self.root}/rate-limits", json=limits, headers=self.headers, timeout=10)
        resp.raise_for_status()
        return resp.json()


# -- conformance ---------------------------------------------------------------------------------

# Render's spec declares unions with oneOf but gives them no discriminator and no
# additionalProperties: false, so real bodies match several branches at once (a web service's
# serviceDetails matches webServiceDetails, privateServiceDetails and backgroundWorkerDetails;
# a PATCH {"serviceDetails": {"maintenanceMode": ...}} matches all five *DetailsPATCH; service
# event details include empty object schemas that match anything). Strict oneOf would reject
# every one of them, including what Render's own CLI sends. They are validated as anyOf (the
# spec has no discriminator anywhere), and the tests check the intended branch separately.
#
# Render also sends explicit nulls the spec does not declare nullable (RENDER_API.md sections 5
# and 8, recorded 201 deploy bodies): those fields are made nullable, and nothing else is.
RECORDED_NULLS = (
    "/components/schemas/deploy/properties/commit",
    "/components/schemas/deploy/properties/finishedAt",
)


def relaxed_spec(spec: dict) -> tuple[dict, list[str]]:
    spec = json.loads(json.dumps(spec))
    relaxed = []

    def walk(node, pointer):
        if isinstance(node, dict):
            if "oneOf" in node:
                node["anyOf"] = node.pop("oneOf")
                relaxed.append(pointer)
            ref = node.get("$ref")
            if isinstance(ref, str) and "/oneOf/" in ref:
                # $refs into a union's branches (Render's spec has 22) follow the rename.
                node["$ref"] = ref.replace("/oneOf/", "/anyOf/")
            for key, value in node.items():
                walk(value, f"{pointer}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{pointer}/{i}")

    walk(spec, "#")
    for pointer in RECORDED_NULLS:
        node = spec
        for part in pointer.strip("/").split("/"):
            node = node[part]
        node["nullable"] = True
        relaxed.append("#" + pointer)
    return spec, relaxed


def load_openapi():
    """(OpenAPI, raw spec, relaxed pointers) or None when the spec file is absent."""
    if not os.path.exists(SPEC_PATH):
        return None
    from openapi_core import OpenAPI

    with open(SPEC_PATH) as handle:
        raw = json.load(handle)
    relaxed, pointers = relaxed_spec(raw)
    return OpenAPI.from_dict(relaxed), raw, pointers


def journal_problems(openapi, entries: list[dict], *, base_url: str = "https://api.render.com") -> list[str]:
    """Validate each recorded request and response; return one line per violation."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    problems = []
    for entry in entries:
        headers = {k: v for k, v in entry["request_headers"].items()
                   if k.lower() not in ("authorization", "host", "content-length")}
        if "authorization" in {k.lower() for k in entry["request_headers"]}:
            headers["Authorization"] = "Bearer placeholder"
        url = base_url + entry["path"] + (f"?{entry['query']}" if entry["query"] else "")
        prepared = requests.Request(entry["method"], url, headers=headers,
                                    data=entry["request_body"].encode() or None).prepare()
        what = f"{entry['method']} {entry['path']}{'?' + entry['query'] if entry['query'] else ''}"
        oa_request = RequestsOpenAPIRequest(prepared)
        try:
            openapi.validate_request(oa_request)
        except Exception as exc:
            problems.append(f"request {what}: {_explain(exc)}")
        if entry["status"] is None:
            continue
        response = requests.Response()
        response.status_code = entry["status"]
        response._content = entry["response_body"].encode()
        response.headers.update(entry["response_headers"])
        response.request = prepared
        try:
            openapi.validate_response(oa_request, RequestsOpenAPIResponse(response))
        except Exception as exc:
            problems.append(f"response {entry['status']} to {what}: {_explain(exc)}")
    return problems


def _explain(exc: Exception) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__
    for error in getattr(cause, "schema_errors", None) or []:
        parts.append(f"  - {error.message[:300]}")
    return "\n".join(parts)[:2000]
