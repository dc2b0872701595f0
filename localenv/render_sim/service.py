"""A Render service: its API shape, environment, maintenance mode, app faults and process.

Its deploys are in deploys.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from localenv.cluster import free_port
from localenv.render_sim.common import PROJECT_ROOT, iso, new_id, now
from localenv.render_sim.deploys import DeployRunner

if TYPE_CHECKING:
    from localenv.render_sim.model import Simulator


class Service(DeployRunner):
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
