"""The simulator's world: services, deploys, events, logs and Postgres instances.

State comes from a YAML file (see example_state.yml). Everything the API returns is
rendered here in the shapes of Render's OpenAPI spec (shared/reference/render-openapi.json);
unset fields are left out, except where Render is recorded sending an explicit null
(a deploy's ``commit`` and ``finishedAt``), which the spec does not declare nullable.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from localenv.cluster import free_port
from localenv.render_sim import pg

ID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEFAULT_RATE_LIMITS = {
    # Render's documented limits (RENDER_API.md section 2.3), per user per minute.
    "get": 400,             # all other GET
    "mutate": 30,           # all other POST / PATCH / PUT / DELETE
    "service_action": 10,   # PATCH /services/{id}, POST deploys/suspend/resume: per service
}
DEFAULT_TIMINGS = {
    "step_seconds": 0.3,        # time spent in each of queued/build/update
    "health_timeout": 20.0,     # an update that is not healthy by then is update_failed
    "pre_deploy_timeout": 600.0,
    "credential_delay": 0.0,    # > 0: a created PostgreSQL user appears only after this long
}
TERMINAL = {"live", "deactivated", "build_failed", "update_failed", "canceled", "pre_deploy_failed"}


def new_id(prefix: str) -> str:
    return prefix + "-" + "".join(secrets.choice(ID_ALPHABET) for _ in range(20))


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    # isoformat, not strftime: strftime's %Y does not zero-pad years before 1000 (schemathesis
    # sent such a startTime).
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(value: str) -> datetime:
    """ISO 8601 (the spec's date-time) or epoch seconds (the spec's prose)."""
    value = value.strip()
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except ValueError:
        pass
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def cursor_for(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def cursor_value(cursor: str) -> str:
    padded = cursor + "=" * (-len(cursor) % 4)
    return base64.urlsafe_b64decode(padded.encode()).decode()


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# -- logs ---------------------------------------------------------------------------------

class LogStore:
    """Log lines with strictly increasing timestamps, as the /logs time pagination needs."""

    def __init__(self):
        self.entries: list[dict] = []
        self._lock = threading.Lock()
        self._last = None

    def add(self, resource: str, message: str, *, log_type: str = "app", level: str = "info",
            instance: str | None = None) -> None:
        with self._lock:
            moment = now()
            if self._last is not None and moment <= self._last:
                moment = self._last + timedelta(microseconds=1)
            self._last = moment
            labels = {"resource": resource, "level": level, "type": log_type}
            if instance:
                labels["instance"] = instance
            self.entries.append({"id": secrets.token_hex(8) + "-" + str(len(self.entries)),
                                 "at": moment, "message": message, "labels": labels})

    def query(self, resources, start, end, direction, limit, filters):
        def matches(entry):
            if entry["labels"]["resource"] not in resources or not start <= entry["at"] <= end:
                return False
            for name, wanted in filters.items():
                if not wanted:
                    continue
                if name == "text":
                    if not any(_text_match(w, entry["message"]) for w in wanted):
                        return False
                elif entry["labels"].get(name) not in wanted:
                    return False
            return True

        with self._lock:
            found = [e for e in self.entries if matches(e)]
        if direction == "backward":
            found.reverse()
        page = found[:limit]
        has_more = len(found) > limit
        next_start, next_end = start, end
        if has_more:
            tick = timedelta(microseconds=1)
            if direction == "backward":
                next_end = page[-1]["at"] - tick
            else:
                next_start = page[-1]["at"] + tick
        return {
            "hasMore": has_more,
            "nextStartTime": iso(next_start),
            "nextEndTime": iso(next_end),
            "logs": [{"id": e["id"], "message": e["message"], "timestamp": iso(e["at"]),
                      "labels": [{"name": k, "value": v} for k, v in e["labels"].items()]}
                     for e in page],
        }


def _text_match(pattern: str, message: str) -> bool:
    import fnmatch

    if "*" in pattern or "?" in pattern:
        return fnmatch.fnmatchcase(message, pattern)
    return pattern in message


# -- postgres -------------------------------------------------------------------------------

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


# -- services ---------------------------------------------------------------------------------

class Service:
    def __init__(self, spec: dict, sim: Simulator):
        self.sim = sim
        self.id = spec.get("id") or new_id("srv")
        self.name = spec["name"]
        self.type = spec.get("type", "web_service")
        self.region = spec.get("region", "oregon")
        self.plan = spec.get("plan", "starter")
        self.runtime = spec.get("runtime", "python")
        self.root_dir = spec.get("rootDir", "")
        self.build_command = spec.get("buildCommand", "pip install -r requirements.txt")
        self.start_command = spec.get("startCommand", "python -m localenv.render_sim.webapp")
        self.pre_deploy_command = spec.get("preDeployCommand") or ""
        self.health_check_path = spec.get("healthCheckPath", "/health")
        mm = spec.get("maintenanceMode") or {}
        self.maintenance = {"enabled": bool(mm.get("enabled", False)), "uri": mm.get("uri", "")}
        self.suspenders = ["user"] if spec.get("suspended") else []
        self.auto_deploy = spec.get("autoDeploy", "no")
        self.created_at = now()
        self.updated_at = self.created_at
        self.env: dict[str, str] = {}
        for item in spec.get("envVars") or []:
            self.env[item["key"]] = sim.resolve_env_value(item)
        self.port = free_port() if self.type == "web_service" else None
        self.deploys: list[dict] = []   # newest first
        # The incident: the newest deploy failed in its pre-deploy command; the
        # previous live one keeps serving.
        self.last_deploy_failed = bool(spec.get("lastDeployFailed", False))
        self.events: list[dict] = []    # newest first
        self.process: subprocess.Popen | None = None
        self.live_env: dict[str, str] = dict(self.env)
        self.maintenance_file = os.path.join(sim.runtime_dir, f"{self.id}.maintenance")
        # The app's faults (the control API's /__sim__/app-faults), read by the app on each request.
        self.app_faults_file = os.path.join(sim.runtime_dir, f"{self.id}.app-faults.json")
        self._runner: threading.Thread | None = None
        self._write_maintenance_file()

    @property
    def suspended(self) -> bool:
        return bool(self.suspenders)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}" if self.port else ""

    @property
    def workdir(self) -> str:
        return os.path.normpath(os.path.join(self.sim.workdir, self.root_dir or "."))

    def api(self) -> dict:
        details = {
            "env": self.runtime,
            "runtime": self.runtime,
            "envSpecificDetails": {"buildCommand": self.build_command, "startCommand": self.start_command},
            "plan": self.plan,
            "region": self.region,
            "numInstances": 1,
            "buildPlan": "starter",
            "previews": {"generation": "off"},
            "pullRequestPreviewsEnabled": "no",
        }
        if self.pre_deploy_command:
            details["envSpecificDetails"]["preDeployCommand"] = self.pre_deploy_command
        if self.type == "web_service":
            details.update({
                "healthCheckPath": self.health_check_path,
                "maintenanceMode": dict(self.maintenance),
                "openPorts": [{"port": self.port, "protocol": "TCP"}],
                "url": self.url,
            })
        return {
            "id": self.id,
            "autoDeploy": self.auto_deploy,
            "createdAt": iso(self.created_at),
            "dashboardUrl": f"https://dashboard.render.com/web/{self.id}",
            "name": self.name,
            "notifyOnFail": "default",
            "ownerId": self.sim.owner["id"],
            "rootDir": self.root_dir,
            "slug": self.name.lower().replace(" ", "-"),
            "suspended": "suspended" if self.suspended else "not_suspended",
            "suspenders": list(self.suspenders),
            "type": self.type,
            "updatedAt": iso(self.updated_at),
            "serviceDetails": details,
        }

    # -- events and logs --

    def event(self, event_type: str, details: dict) -> None:
        self.events.insert(0, {"id": new_id("evt"), "timestamp": iso(now()), "serviceId": self.id,
                               "type": event_type, "details": details})

    def log(self, message: str, *, log_type: str = "app", level: str = "info") -> None:
        self.sim.logs.add(self.id, message, log_type=log_type, level=level, instance=f"{self.id}-sim01")

    # -- maintenance --

    def _write_maintenance_file(self) -> None:
        if self.maintenance["enabled"]:
            with open(self.maintenance_file, "w") as handle:
                handle.write(self.maintenance["uri"])
        elif os.path.exists(self.maintenance_file):
            os.unlink(self.maintenance_file)

    def set_maintenance(self, enabled: bool, uri: str) -> None:
        before = dict(self.maintenance)
        self.maintenance = {"enabled": enabled, "uri": uri}
        self._write_maintenance_file()
        if before["enabled"] != enabled:
            self.event("maintenance_mode_enabled", {"enabled": enabled})
        if before["uri"] != uri:
            self.event("maintenance_mode_uri_updated", {"fromURI": before["uri"], "toURI": uri})

    def set_app_faults(self, faults: list[dict]) -> None:
        """What the app answers instead (webapp_api.py): written atomically, kept across deploys."""
        partial = self.app_faults_file + ".tmp"
        with open(partial, "w") as handle:
            json.dump(list(faults), handle)
        os.replace(partial, self.app_faults_file)

    def app_faults(self) -> list[dict]:
        if not os.path.exists(self.app_faults_file):
            return []
        with open(self.app_faults_file) as handle:
            return json.load(handle)

    # -- the process --

    def process_env(self, env: dict[str, str]) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items()
                if k in ("HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "USER", "LOGNAME")}
        base["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
        base.update({"RENDER": "true", "IS_PULL_REQUEST": "false", "RENDER_SERVICE_ID": self.id,
                     "RENDER_SERVICE_NAME": self.name, "RENDER_SERVICE_TYPE": self.type.split("_")[0],
                     "RENDER_EXTERNAL_URL": self.url, "PYTHONUNBUFFERED": "1"})
        base.update(env)
        if self.port:
            base["PORT"] = str(self.port)
        base["HEALTH_CHECK_PATH"] = self.health_check_path or "/health"
        base["RENDER_SIM_MAINTENANCE_FILE"] = self.maintenance_file
        base["RENDER_SIM_APP_FAULTS_FILE"] = self.app_faults_file
        base["RENDER_SIM_PARENT_PID"] = str(os.getpid())
        return base

    def start_process(self, env: dict[str, str]) -> None:
        if self.type != "web_service" or self.process is not None:
            return
        proc = subprocess.Popen(
            [sys.executable, "-m", "localenv.render_sim.webapp"], cwd=PROJECT_ROOT,
            env=self.process_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        self.process = proc

        def pump():
            for line in proc.stdout:
                self.log(line.rstrip("\n"))

        threading.Thread(target=pump, daemon=True, name=f"logs-{self.id}").start()

    def stop_process(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def wait_healthy(self, timeout: float) -> tuple[bool, str]:
        deadline = time.monotonic() + timeout
        reason = "not started"
        while time.monotonic() < deadline and not self.sim.stopping.is_set():
            proc = self.process
            if proc is None or proc.poll() is not None:
                return False, "the service process exited"
            try:
                with urllib.request.urlopen(f"{self.url}/__sim__/health", timeout=5) as resp:  # noqa: S310
                    if resp.status == 200:
                        return True, "healthy"
            except urllib.error.HTTPError as exc:
                reason = exc.read().decode("utf-8", "replace")[:300]
            except OSError as exc:
                reason = type(exc).__name__
            time.sleep(0.1)
        return False, f"health check did not pass within {timeout:.0f}s: {reason}"

    # -- suspend / resume --

    def suspend(self) -> None:
        with self.sim.lock:
            if "user" not in self.suspenders:
                self.suspenders.append("user")
                self.event("service_suspended", {})
            self.updated_at = now()
        self.stop_process()

    def resume(self) -> None:
        with self.sim.lock:
            if "user" in self.suspenders:
                self.suspenders.remove("user")
                self.event("service_resumed", {})
            self.updated_at = now()
            env = dict(self.live_env) if not self.suspended else None
        if env is not None:
            self.start_process(env)

    # -- deploys --

    def create_deploy(self, body: dict) -> tuple[dict, bool]:
        """Add a deploy; return (deploy, queued_behind_another).

        As recorded from Render: a deploy that can start at once is answered 201 with a body
        already in a running status (build_in_progress for a build); one behind a running
        deploy stays queued and is answered 202 with no body.
        """
        busy = any(d["status"] not in TERMINAL for d in self.deploys)
        moment = now()
        deploy = {"id": new_id("dep"), "status": "queued" if busy else "build_in_progress", "trigger": "api",
                  "createdAt": moment, "updatedAt": moment, "startedAt": None if busy else moment,
                  "finishedAt": None, "clearCache": body.get("clearCache", "do_not_clear"), "picked": False}
        if body.get("commitId"):
            deploy["commit"] = {"id": body["commitId"], "message": "deploy via API", "createdAt": iso(moment)}
        self.deploys.insert(0, deploy)
        if self._runner is None or not self._runner.is_alive():
            self._runner = threading.Thread(target=self._run_deploys, daemon=True, name=f"deploy-{self.id}")
            self._runner.start()
        return deploy, busy

    @staticmethod
    def deploy_api(deploy: dict) -> dict:
        # Render sends "commit": null (deploys not built from a commit) and "finishedAt": null
        # until the deploy ends (RENDER_API.md section 5, recorded 201 bodies); startedAt is
        # absent from those recordings until it is set.
        body = {"id": deploy["id"], "commit": deploy.get("commit"), "status": deploy["status"],
                "trigger": deploy["trigger"], "createdAt": iso(deploy["createdAt"]),
                "updatedAt": iso(deploy["updatedAt"]),
                "finishedAt": iso(deploy["finishedAt"]) if deploy.get("finishedAt") else None}
        if deploy.get("startedAt"):
            body["startedAt"] = iso(deploy["startedAt"])
        return body

    def _set(self, deploy: dict, status: str) -> None:
        with self.sim.lock:
            deploy["status"] = status
            deploy["updatedAt"] = now()
            if status in TERMINAL:
                deploy["finishedAt"] = deploy["updatedAt"]

    def _run_deploys(self) -> None:
        while not self.sim.stopping.is_set():
            with self.sim.lock:
                waiting = [d for d in self.deploys if d["status"] not in TERMINAL and not d.get("picked", True)]
                if not waiting:
                    self._runner = None
                    return
                deploy = waiting[-1]  # oldest first
                deploy["picked"] = True
            try:
                self._run_one(deploy)
            except Exception as exc:  # a simulator bug must not hang the deploy forever
                self.log(f"==> simulator error: {type(exc).__name__}: {exc}", log_type="build", level="error")
                self._set(deploy, "update_failed")

    def _pause(self) -> None:
        self.sim.stopping.wait(self.sim.timings["step_seconds"])

    def _run_one(self, deploy: dict) -> None:
        timings = self.sim.timings
        dep_id = deploy["id"]
        with self.sim.lock:
            queued = deploy["status"] == "queued"
            deploy["startedAt"] = deploy["startedAt"] or now()
            env = dict(self.env)
            self.event("deploy_started", {"deployId": dep_id, "trigger": {
                "firstBuild": False, "envUpdated": False, "manual": False, "deployedByRender": False,
                "clearCache": deploy["clearCache"] == "clear", "rollback": False}})
        if queued:  # a 201 deploy is building already
            self._pause()
            self._set(deploy, "build_in_progress")
        build_id = new_id("bld")
        with self.sim.lock:
            self.event("build_started", {"buildId": build_id, "trigger": {
                "firstBuild": False, "envUpdated": False, "manual": False, "deployedByRender": False,
                "clearCache": False, "rollback": False}})
        self.log(f"==> Running build command '{self.build_command}'...", log_type="build")
        self._pause()
        self.log("==> Build successful", log_type="build")
        with self.sim.lock:
            self.event("build_ended", {"buildId": build_id, "buildStatus": "succeeded", "status": 2,
                                       "reason": {"newDeploy": {"id": dep_id}}})
        if self.pre_deploy_command:
            self._set(deploy, "pre_deploy_in_progress")
            execution = new_id("dce")
            with self.sim.lock:
                self.event("pre_deploy_started", {"deployCommandExecutionId": execution, "deployId": dep_id})
            self.log(f"==> Running pre-deploy command '{self.pre_deploy_command}'...", log_type="build")
            code, output = self._run_command(self.pre_deploy_command, env, timings["pre_deploy_timeout"])
            for line in output.splitlines():
                self.log(line, log_type="build", level="error" if code else "info")
            if code != 0:
                self.log(f"==> Pre-deploy command failed with exit code {code}", log_type="build",
                         level="error")
                with self.sim.lock:
                    self.event("pre_deploy_ended", {
                        "deployCommandExecutionId": execution, "deployId": dep_id, "status": 3,
                        "preDeployStatus": "failed",
                        "reason": {"failure": {"evicted": False, "nonZeroExit": code}}})
                    failure = {"failure": {"evicted": False, "nonZeroExit": code}}
                    self.event("deploy_ended", {"deployId": dep_id, "deployStatus": "failed", "status": 3,
                                                "reason": failure})
                self._set(deploy, "pre_deploy_failed")
                return
            self.log("==> Pre-deploy command succeeded", log_type="build")
            with self.sim.lock:
                self.event("pre_deploy_ended", {"deployCommandExecutionId": execution, "deployId": dep_id,
                                                "status": 2, "preDeployStatus": "succeeded", "reason": {}})
        self._set(deploy, "update_in_progress")
        self._pause()
        if self.type == "web_service" and not self.suspended:
            self.log("==> Deploying: restarting the service with the new environment", log_type="build")
            self.stop_process()
            self.start_process(env)
            healthy, reason = self.wait_healthy(timings["health_timeout"])
            if not healthy:
                self.log(f"==> Deploy failed: {reason}", log_type="build", level="error")
                with self.sim.lock:
                    self.event("deploy_ended", {"deployId": dep_id, "deployStatus": "failed", "status": 3,
                                                "reason": {"failure": {"evicted": False,
                                                                       "unhealthy": reason[:200]}}})
                self._set(deploy, "update_failed")
                return
        with self.sim.lock:
            self.live_env = env
            for other in self.deploys:
                if other is not deploy and other["status"] == "live":
                    other["status"] = "deactivated"
                    other["updatedAt"] = now()
            self.event("deploy_ended", {"deployId": dep_id, "deployStatus": "succeeded", "status": 2,
                                        "reason": {}})
        self._set(deploy, "live")
        self.log("==> Your service is live", log_type="build")

    def _run_command(self, command: str, env: dict[str, str], timeout: float) -> tuple[int, str]:
        proc = subprocess.Popen(command, shell=True, cwd=self.workdir, env=self.process_env(env),  # noqa: S602
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            return 124, (output or "") + f"\npre-deploy command timed out after {timeout:.0f}s"
        return proc.returncode, output or ""


# -- the whole world ------------------------------------------------------------------------

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
