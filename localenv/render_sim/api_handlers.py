"""The Render API operations the simulator answers: services, env vars, deploys, events,
Postgres instances, credentials, exports and logs, each in the shape of Render's OpenAPI spec.

Each takes (path parameters, query, JSON body) and returns (status, payload); routes.py maps
the paths to them.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

from localenv.render_sim.common import ApiError, cursor_for, now, parse_time
from localenv.render_sim.routes import body_dict, paginate, q_limit, q_list, q_one, time_param
from localenv.render_sim.service import Service

USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
PAID_PLANS = {"starter", "standard", "pro", "pro_plus", "pro_max", "pro_ultra"}
WEB_PATCH_FIELDS = {"envSpecificDetails", "healthCheckPath", "maintenanceMode", "plan", "preDeployCommand",
                    "pullRequestPreviewsEnabled", "previews", "runtime", "maxShutdownDelaySeconds",
                    "renderSubdomainPolicy", "ipAllowList", "cache"}
SERVICE_PATCH_FIELDS = {"autoDeploy", "repo", "branch", "image", "name", "buildFilter", "rootDir",
                        "serviceDetails"}


class Api:
    def __init__(self, sim):
        self.sim = sim

    def list_owners(self, p, q, body):
        return 200, paginate([self.sim.owner], lambda o: o["id"], "owner", q, dict)

    def list_services(self, p, q, body):
        names, types = q_list(q, "name"), q_list(q, "type")
        suspended, regions = q_list(q, "suspended"), q_list(q, "region")
        with self.sim.lock:
            items = [s for s in self.sim.services.values()
                     if (not names or s.name in names) and (not types or s.type in types)
                     and (not regions or s.region in regions)
                     and (not suspended or ("suspended" if s.suspended else "not_suspended") in suspended)]
            return 200, paginate(items, lambda s: s.id, "service", q, Service.api)

    def get_service(self, p, q, body):
        with self.sim.lock:
            return 200, self.sim.service(p["serviceId"]).api()

    def patch_service(self, p, q, body):
        body = body_dict(body)
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            unknown = set(body) - SERVICE_PATCH_FIELDS
            if unknown:
                raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))}")
            details = body.get("serviceDetails") or {}
            if not isinstance(details, dict):
                raise ApiError(400, "serviceDetails must be an object")
            if service.type != "web_service" and "maintenanceMode" in details:
                raise ApiError(400, "maintenance mode is only available for web services")
            unknown = set(details) - WEB_PATCH_FIELDS
            if unknown:
                raise ApiError(400, f"unknown serviceDetails field(s): {', '.join(sorted(unknown))}")
            mm = details.get("maintenanceMode")
            if mm is not None:
                if (not isinstance(mm, dict) or not isinstance(mm.get("enabled"), bool)
                        or not isinstance(mm.get("uri"), str)):
                    raise ApiError(400, "maintenanceMode needs enabled (boolean) and uri (string)")
                if mm["uri"] and mm["uri"].startswith(service.url or "\0"):
                    raise ApiError(400, "the maintenance page must not be a URL of this service")
            if "plan" in details and details["plan"] not in PAID_PLANS:
                raise ApiError(400, f"invalid plan {details['plan']!r}")
            if "autoDeploy" in body and body["autoDeploy"] not in ("yes", "no"):
                raise ApiError(400, "autoDeploy must be yes or no")
            if "name" in body and (not isinstance(body["name"], str) or not body["name"]):
                raise ApiError(400, "name must be a non-empty string")
            # validated: apply
            if mm is not None:
                service.set_maintenance(mm["enabled"], mm["uri"])
            if "healthCheckPath" in details:
                service.health_check_path = str(details["healthCheckPath"])
            if "preDeployCommand" in details:
                service.pre_deploy_command = str(details["preDeployCommand"])
            if "plan" in details:
                service.plan = details["plan"]
            if "name" in body:
                service.name = body["name"]
            if "autoDeploy" in body:
                service.auto_deploy = body["autoDeploy"]
            service.updated_at = now()
            return 200, service.api()

    def suspend(self, p, q, body):
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
        service.suspend()
        return 202, None

    def resume(self, p, q, body):
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
        service.resume()
        return 202, None

    def list_env(self, p, q, body):
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            items = list(service.env.items())
        return 200, paginate(items, lambda kv: kv[0], "envVar", q, lambda kv: {"key": kv[0], "value": kv[1]})

    @staticmethod
    def _env_value(item: dict, *, key_required: bool) -> tuple[str | None, str]:
        if not isinstance(item, dict):
            raise ApiError(400, "each environment variable must be an object")
        key = item.get("key")
        if key_required and (not isinstance(key, str) or not key):
            raise ApiError(400, "key is required")
        has_value, generate = "value" in item, item.get("generateValue") is True
        if has_value == generate:
            raise ApiError(400, "give exactly one of value or generateValue")
        if has_value and not isinstance(item["value"], str):
            raise ApiError(400, "value must be a string")
        return key, item["value"] if has_value else _generated_value()

    def replace_env(self, p, q, body):
        if not isinstance(body, list):
            raise ApiError(400, "request body must be a JSON array")
        pairs = [self._env_value(item, key_required=True) for item in body]
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            service.env = dict(pairs)
            service.updated_at = now()
            items = list(service.env.items())
        return 200, [{"envVar": {"key": k, "value": v}, "cursor": cursor_for(k)} for k, v in items]

    def get_env(self, p, q, body):
        key = p["envVarKey"]
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            if key not in service.env:
                raise ApiError(404, f"not found: {key}")
            return 200, {"key": key, "value": service.env[key]}

    def put_env(self, p, q, body):
        _, value = self._env_value(body_dict(body), key_required=False)
        key = p["envVarKey"]
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            service.env[key] = value
            service.updated_at = now()
        return 200, {"key": key, "value": value}

    def delete_env(self, p, q, body):
        key = p["envVarKey"]
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            if key not in service.env:
                raise ApiError(404, f"not found: {key}")
            del service.env[key]
            service.updated_at = now()
        return 204, None

    def list_deploys(self, p, q, body):
        statuses = q_list(q, "status")
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            items = [d for d in service.deploys if not statuses or d["status"] in statuses]
            return 200, paginate(items, lambda d: d["id"], "deploy", q, Service.deploy_api)

    def create_deploy(self, p, q, body):
        body = {} if body is None else body_dict(body)
        if body.get("clearCache", "do_not_clear") not in ("clear", "do_not_clear"):
            raise ApiError(400, "clearCache must be clear or do_not_clear")
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            deploy, queued_behind = service.create_deploy(body)
            if queued_behind:
                return 202, None
            return 201, Service.deploy_api(deploy)

    def get_deploy(self, p, q, body):
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            for deploy in service.deploys:
                if deploy["id"] == p["deployId"]:
                    return 200, Service.deploy_api(deploy)
        raise ApiError(404, f"not found: {p['deployId']}")

    def list_events(self, p, q, body):
        types = q_list(q, "type")
        start, end = time_param(q, "startTime"), time_param(q, "endTime")
        with self.sim.lock:
            service = self.sim.service(p["serviceId"])
            items = [e for e in service.events if (not types or e["type"] in types)
                     and (start is None or parse_time(e["timestamp"]) >= start)
                     and (end is None or parse_time(e["timestamp"]) <= end)]
            return 200, paginate(items, lambda e: e["id"], "event", q, dict)

    def list_postgres(self, p, q, body):
        names = q_list(q, "name")
        with self.sim.lock:
            items = [i for i in self.sim.postgres.values() if not names or i.name in names]
            return 200, paginate(items, lambda i: i.id, "postgres", q, lambda i: i.api(detail=False))

    def get_postgres(self, p, q, body):
        with self.sim.lock:
            return 200, self.sim.instance(p["postgresId"]).api(detail=True)

    def connection_info(self, p, q, body):
        with self.sim.lock:
            return 200, self.sim.instance(p["postgresId"]).connection_info()

    def list_credentials(self, p, q, body):
        with self.sim.lock:
            return 200, self.sim.instance(p["postgresId"]).list_credentials()

    def create_credential(self, p, q, body):
        body = body_dict(body)
        username = body.get("username")
        if not isinstance(username, str) or not username:
            raise ApiError(400, "username is required")
        if not USERNAME_RE.match(username):
            raise ApiError(400, "username must start with a lowercase letter or _ and hold only "
                                "lowercase letters, digits and _ (at most 63)")
        with self.sim.lock:
            self.sim.instance(p["postgresId"]).create_credential(username)
        return 202, None

    def delete_credential(self, p, q, body):
        with self.sim.lock:
            self.sim.instance(p["postgresId"]).delete_credential(p["username"])
        return 200, None

    def list_exports(self, p, q, body):
        with self.sim.lock:
            return 200, self.sim.instance(p["postgresId"]).list_exports()

    def create_export(self, p, q, body):
        with self.sim.lock:
            self.sim.instance(p["postgresId"]).create_export()
        return 202, None

    def list_logs(self, p, q, body):
        owner_id = q_one(q, "ownerId")
        if not owner_id:
            raise ApiError(400, "ownerId is required")
        if owner_id != self.sim.owner["id"]:
            raise ApiError(404, f"not found: {owner_id}")
        resources = q_list(q, "resource")
        if not resources:
            raise ApiError(400, "resource is required")
        with self.sim.lock:
            for resource in resources:
                if resource not in self.sim.services and resource not in self.sim.postgres:
                    raise ApiError(404, f"not found: {resource}")
        end = time_param(q, "endTime") or now()
        start = time_param(q, "startTime") or (end - _HOUR)
        direction = q_one(q, "direction") or "backward"
        if direction not in ("forward", "backward"):
            raise ApiError(400, "direction must be forward or backward")
        filters = {name: q_list(q, name) for name in ("level", "type", "text", "instance")}
        return 200, self.sim.logs.query(set(resources), start, end, direction, q_limit(q), filters)



def _generated_value() -> str:
    return secrets.token_urlsafe(32)


_HOUR = timedelta(hours=1)
