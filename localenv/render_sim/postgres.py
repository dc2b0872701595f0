"""A Render Postgres instance: its API shape, connection info, exports and credentials (users)."""

from __future__ import annotations

import secrets
import threading
from typing import TYPE_CHECKING
from urllib.parse import quote

from localenv.render_sim import pg
from localenv.render_sim.common import ApiError, iso, new_id, now

if TYPE_CHECKING:
    from localenv.render_sim.model import Simulator


class PostgresInstance:
    def __init__(self, spec: dict, sim: Simulator):
        self.sim = sim
        self.id = spec.get("id") or new_id("dpg") + "-a"
        self.name = spec.get("name") or self.id
        self.database = spec["databaseName"]
        first_user = spec["databaseUser"]
        self.region = spec.get("region", "oregon")
        self.plan = spec.get("plan", "basic_256mb")
        self.disk_size_gb = spec.get("diskSizeGB")  # optional in Render's schema
        self.created_at = now()
        self.updated_at = self.created_at
        cluster = sim.cluster
        password = cluster.app_password if first_user == cluster.app_user else secrets.token_urlsafe(24)
        self.owner_role = pg.ensure_instance(cluster, self.database, first_user, password)
        self.version = pg.server_version(cluster)
        self.credentials = [{"username": first_user, "password": password, "createdAt": self.created_at,
                             "default": True}]
        self.pending: set[str] = set()
        self.exports: list[dict] = []  # newest first
        # Users made through the API before the simulation starts, oldest first; the
        # newest becomes the default, as each create does (e.g. leaked users to rotate).
        for username in spec.get("credentials") or []:
            self._create_credential(username, existing_ok=True)

    @property
    def default(self) -> dict:
        return next(c for c in self.credentials if c["default"])

    def api(self, *, detail: bool) -> dict:
        body = {
            "id": self.id,
            "ipAllowList": [],
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "dashboardUrl": f"https://dashboard.render.com/d/{self.id}",
            "databaseName": self.database,
            "databaseUser": self.default["username"],
            "highAvailabilityEnabled": False,
            "name": self.name,
            "owner": self.sim.owner,
            "plan": self.plan,
            "region": self.region,
            "readReplicas": [],
            "role": "primary",
            "status": "available",
            "version": self.version,
            "suspended": "not_suspended",
            "suspenders": [],
            "diskAutoscalingEnabled": False,
        }
        if self.disk_size_gb is not None:
            body["diskSizeGB"] = self.disk_size_gb
        if detail:
            # Required by postgresDetail but given no schema in the spec; Render's recorded
            # responses leave it out of what they show. Not in any project here.
            body["project"] = None
        return body

    def connection_info(self) -> dict:
        cred = self.default
        cluster = self.sim.cluster
        user, password = quote(cred["username"], safe=""), quote(cred["password"], safe="")
        internal = f"postgresql://{user}:{password}@localhost:{cluster.port}/{self.database}"
        external = f"postgresql://{user}:{password}@{cluster.host}:{cluster.port}/{self.database}"
        return {
            "password": cred["password"],
            "internalConnectionString": internal,
            "externalConnectionString": external,
            "psqlCommand": f"PGPASSWORD={cred['password']} psql -h {cluster.host} -p {cluster.port} "
                           f"-U {cred['username']} {self.database}",
        }

    def list_exports(self) -> list[dict]:
        return [dict(export) for export in self.exports]

    def create_export(self) -> None:
        """Render exports the database to a file it keeps for download; the simulator
        records the export (newest first) with a download URL, not the file."""
        moment = now()
        export_id = new_id("exp")
        self.exports.insert(0, {"id": export_id, "createdAt": iso(moment),
                                "url": f"https://exports.render.invalid/{self.id}/{export_id}.dir.tar.gz"})

    def list_credentials(self) -> list[dict]:
        counts = pg.open_connections(self.sim.cluster, self.database)
        return [{"username": c["username"], "default": c["default"], "createdAt": iso(c["createdAt"]),
                 "openConnections": counts.get(c["username"], 0)} for c in self.credentials]

    def create_credential(self, username: str) -> None:
        """Create the user now, or after ``timings.credential_delay`` seconds (Render answers 202:
        whether the user exists at once is an open question, so both can be simulated)."""
        if username in self.pending or any(c["username"] == username for c in self.credentials) \
                or pg.role_taken(self.sim.cluster, username):
            raise ApiError(400, f"user {username} already exists")
        delay = float(self.sim.timings.get("credential_delay") or 0)
        if delay <= 0:
            self._create_credential(username)
            return
        self.pending.add(username)

        def later():
            if not self.sim.stopping.wait(delay):
                with self.sim.lock:
                    self._create_credential(username)
            self.pending.discard(username)

        threading.Thread(target=later, daemon=True, name=f"credential-{username}").start()

    def _create_credential(self, username: str, *, existing_ok: bool = False) -> None:
        password = secrets.token_urlsafe(24)
        pg.create_credential(self.sim.cluster, self.database, self.owner_role, username, password,
                             existing_ok=existing_ok)
        for cred in self.credentials:
            cred["default"] = False
        self.credentials.append({"username": username, "password": password, "createdAt": now(),
                                 "default": True})
        self.updated_at = now()
        self.sim.logs.add(self.id, f"created PostgreSQL user {username}; it is now the default user")

    def delete_credential(self, username: str) -> None:
        cred = next((c for c in self.credentials if c["username"] == username), None)
        if cred is None:
            raise ApiError(404, f"not found: {username}")
        if cred["default"]:
            raise ApiError(400, f"cannot delete {username}: it is the default user; create a new "
                                "user first")
        pg.delete_credential(self.sim.cluster, self.database, self.owner_role, username)
        self.credentials.remove(cred)
        self.updated_at = now()
        self.sim.logs.add(self.id, f"deleted PostgreSQL user {username}")

