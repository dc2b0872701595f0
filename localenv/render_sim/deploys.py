"""A service's deploys: created through the API, run one at a time in a thread per service.

Each deploy walks Render's statuses (queued, build, pre-deploy, update, live or a failure),
writes the events and build logs Render records, and restarts the service's process with the
deploy's environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading

from localenv.render_sim.common import TERMINAL, iso, new_id, now


class DeployRunner:
    """The deploy half of ``Service`` (service.py), which provides ``sim``, ``env``, ``deploys``,
    ``event``, ``log``, ``workdir``, ``process_env`` and the process methods."""

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

