"""The simulator's world: services, deploys, events, logs and Postgres instances.

State comes from a YAML file (see example_state.yml). Everything the API returns is
rendered in the shapes of Render's OpenAPI spec (shared/reference/render-openapi.json);
unset fields are left out, except where Render is recorded sending an explicit null
(a deploy's ``commit`` and ``finishedAt``), which the spec does not declare nullable.

The parts: common.py (ids, times, cursors, limits, ApiError), logstore.py, postgres.py,
service.py and deploys.py; this file holds the whole world they belong to.
"""

from __future__ import annotations

import os
import secrets
import threading

from localenv.render_sim.common import DEFAULT_RATE_LIMITS, DEFAULT_TIMINGS, PROJECT_ROOT, ApiError, new_id, now
from localenv.render_sim.logstore import LogStore
from localenv.render_sim.postgres import PostgresInstance
from localenv.render_sim.service import Service


class Simulator:
    def __init__(self, state: dict, cluster, *, runtime_dir: str, workdir: str | None = None):
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.cluster = cluster
        self.runtime_dir = runtime_dir
        self.workdir = os.path.abspath(workdir or state.get("workdir") or PROJECT_ROOT)
        owner = state.get("owner") or {}
        self.owner = {"id": owner.get("id") or new_id("tea"), "name": owner.get("name", "Simulated team"),
                      "email": owner.get("email", "ops@example.com"), "type": owner.get("type", "team")}
        self.rate_limits = dict(DEFAULT_RATE_LIMITS, **(state.get("rate_limits") or {}))
        self.timings = dict(DEFAULT_TIMINGS, **(state.get("timings") or {}))
        self.logs = LogStore()
        self.postgres: dict[str, PostgresInstance] = {}
        for spec in state.get("postgres") or []:
            instance = PostgresInstance(spec, self)
            self.postgres[instance.id] = instance
        self.services: dict[str, Service] = {}
        for spec in state.get("services") or []:
            service = Service(spec, self)
            self.services[service.id] = service

    def resolve_env_value(self, item: dict) -> str:
        """``value``, ``generateValue: true`` (a new random secret) or ``fromDatabase: {id|name,
        property}``, as in render.yaml blueprints."""
        if "value" in item:
            return str(item["value"])
        if item.get("generateValue") is True:
            return secrets.token_urlsafe(32)
        ref = item.get("fromDatabase")
        if ref:
            instance = next((p for p in self.postgres.values()
                             if ref.get("id") in (p.id, None) and ref.get("name") in (p.name, None)), None)
            if instance is None:
                raise ValueError(f"env var {item['key']}: no postgres {ref}")
            info = instance.connection_info()
            prop = ref.get("property", "connectionString")
            return {"connectionString": info["internalConnectionString"],
                    "externalConnectionString": info["externalConnectionString"],
                    "password": info["password"], "user": instance.default["username"],
                    "database": instance.database, "host": "localhost",
                    "port": str(self.cluster.port)}[prop]
        raise ValueError(f"env var {item.get('key')}: give value, generateValue or fromDatabase")

    def start(self) -> None:
        """Start every web service that is not suspended, as its last live deploy left it."""
        for service in self.services.values():
            moment = now()
            service.deploys.insert(0, {"id": new_id("dep"), "status": "live", "trigger": "manual",
                                       "createdAt": moment, "updatedAt": moment, "startedAt": moment,
                                       "finishedAt": moment, "clearCache": "do_not_clear"})
            if service.last_deploy_failed:
                later = now()
                service.deploys.insert(0, {"id": new_id("dep"), "status": "pre_deploy_failed",
                                           "trigger": "new_commit", "createdAt": later, "updatedAt": later,
                                           "startedAt": later, "finishedAt": later,
                                           "clearCache": "do_not_clear"})
            if not service.suspended:
                service.start_process(service.live_env)
        for service in self.services.values():
            if service.process is not None:
                service.wait_healthy(self.timings["health_timeout"])

    def stop(self) -> None:
        self.stopping.set()
        for service in self.services.values():
            service.stop_process()
            for path in (service.maintenance_file, service.app_faults_file):
                if os.path.exists(path):
                    os.unlink(path)

    def service(self, service_id: str) -> Service:
        try:
            return self.services[service_id]
        except KeyError:
            raise ApiError(404, f"not found: {service_id}") from None

    def instance(self, postgres_id: str) -> PostgresInstance:
        try:
            return self.postgres[postgres_id]
        except KeyError:
            raise ApiError(404, f"not found: {postgres_id}") from None
