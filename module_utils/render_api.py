"""The one client for Render's public REST API (https://api.render.com/v1): its resources.

Every Render module in this collection talks to Render through ``RenderClient``: services
(maintenance mode, suspend/resume), environment variables, deploys and events, Postgres
instances (credentials, connection info, exports) and logs. The HTTP under it (auth,
retries, pagination, errors that never hold the key) is ``render_http.RenderHTTP``; creates
that may have taken effect pass a ``check`` that lists what they would have made, so a
retry never doubles one.

The reference for every path, status code and body shape is shared/reference/RENDER_API.md
and Render's OpenAPI spec beside it.
"""

from __future__ import annotations

from ansible.module_utils.render_http import PAGE_LIMIT, RenderAPIError, RenderHTTP, _encode

# Deploy statuses (SPEC deployStatus). Terminal and successful as the Render CLI reads them.
DEPLOY_TERMINAL = frozenset(
    {"live", "deactivated", "build_failed", "update_failed", "canceled", "pre_deploy_failed"})
DEPLOY_SUCCESS = frozenset({"live", "deactivated"})
DEPLOY_FAILED = DEPLOY_TERMINAL - DEPLOY_SUCCESS


class RenderClient(RenderHTTP):
    """Render's resources over RenderHTTP."""

    def list_services(self, *, name=None, service_type=None, max_items=None):
        params = {}
        if name:
            params["name"] = name if isinstance(name, str) else ",".join(name)
        if service_type:
            params["type"] = service_type if isinstance(service_type, str) else ",".join(service_type)
        return list(self.paginate("/services", "service", params=params, resource="services",
                                  max_items=max_items))

    def get_service(self, service_id):
        return self.get(f"/services/{_encode(service_id)}", resource=f"service {service_id}")

    def find_service(self, id_or_name):
        """A service by ID (srv-/crn-...) or by exact name; error when none or several match."""
        if _looks_like_id(id_or_name):
            return self.get_service(id_or_name)
        found = [s for s in self.list_services(name=id_or_name) if s.get("name") == id_or_name]
        if not found:
            raise RenderAPIError(f"service named {id_or_name!r} not found", status=404,
                                 resource=f"service {id_or_name}")
        if len(found) > 1:
            ids = ", ".join(s["id"] for s in found)
            raise RenderAPIError(f"several services are named {id_or_name!r} ({ids}); give the ID")
        return found[0]

    def update_service(self, service_id, patch):
        return self.request("PATCH", f"/services/{_encode(service_id)}", body=patch,
                            resource=f"service {service_id}").body

    def set_maintenance_mode(self, service_id, enabled, uri=""):
        """PATCH serviceDetails.maintenanceMode (both fields are required by the spec)."""
        return self.update_service(
            service_id, {"serviceDetails": {"maintenanceMode": {"enabled": bool(enabled), "uri": uri or ""}}})

    def _suspend_resume(self, service_id, action, wanted):
        def check():
            service = self.get_service(service_id)
            return service if service.get("suspended") == wanted else None

        return self.request("POST", f"/services/{_encode(service_id)}/{action}",
                            resource=f"service {service_id}", check=check)

    def suspend_service(self, service_id):
        return self._suspend_resume(service_id, "suspend", "suspended")

    def resume_service(self, service_id):
        return self._suspend_resume(service_id, "resume", "not_suspended")

    # -- environment variables ---------------------------------------------------

    def list_env_vars(self, service_id):
        return list(self.paginate(f"/services/{_encode(service_id)}/env-vars", "envVar",
                                  resource=f"env vars of service {service_id}"))

    def get_env_var(self, service_id, key):
        """``{key, value}``, or None when the service has no such variable (404)."""
        path = f"/services/{_encode(service_id)}/env-vars/{_encode(key)}"
        try:
            return self.get(path, resource=f"env var {key} of service {service_id}")
        except RenderAPIError as exc:
            if exc.status == 404:
                # Distinguish a missing variable from a missing service.
                self.get_service(service_id)
                return None
            raise

    def put_env_var(self, service_id, key, value=None, *, generate=False):
        body = {"generateValue": True} if generate else {"value": value}
        return self.request("PUT", f"/services/{_encode(service_id)}/env-vars/{_encode(key)}",
                            body=body, resource=f"env var {key} of service {service_id}").body

    def delete_env_var(self, service_id, key):
        self.request("DELETE", f"/services/{_encode(service_id)}/env-vars/{_encode(key)}",
                     resource=f"env var {key} of service {service_id}", missing_ok_on_retry=True)

    # -- deploys ---------------------------------------------------------------

    def list_deploys(self, service_id, *, status=None, limit=PAGE_LIMIT, max_items=None):
        params = {}
        if status:
            params["status"] = [status] if isinstance(status, str) else list(status)
        return list(self.paginate(f"/services/{_encode(service_id)}/deploys", "deploy", params=params,
                                  resource=f"deploys of service {service_id}", limit=limit,
                                  max_items=max_items))

    def get_deploy(self, service_id, deploy_id):
        return self.get(f"/services/{_encode(service_id)}/deploys/{_encode(deploy_id)}",
                        resource=f"deploy {deploy_id} of service {service_id}")

    def _recent_deploy_ids(self, service_id):
        return [d["id"] for d in self.list_deploys(service_id, limit=20, max_items=20)]

    def create_deploy(self, service_id, *, clear_cache=False, commit_id=None, image_url=None,
                      queued_timeout=60.0, queued_interval=1.0):
        """Trigger a deploy; return ``(deploy or None, http_status)``.

        Render answers 201 with the deploy, or 202 "Queued" with no body; after a 202 the new
        deploy (one not listed before the POST) is looked for up to ``queued_timeout`` seconds.
        An ambiguous failure is retried only when the list shows no new deploy (see request).
        """
        body = {}
        if clear_cache:
            body["clearCache"] = "clear"
        if commit_id:
            body["commitId"] = commit_id
        if image_url:
            body["imageUrl"] = image_url
        before = set(self._recent_deploy_ids(service_id))

        def new_deploy():
            return next((d for d in self.list_deploys(service_id, limit=20, max_items=20)
                         if d["id"] not in before), None)

        response = self.request("POST", f"/services/{_encode(service_id)}/deploys", body=body,
                                resource=f"service {service_id}", check=new_deploy)
        if response.recovered or (isinstance(response.body, dict) and response.body.get("id")):
            return response.body, 201 if response.recovered else response.status
        deadline = self._clock() + queued_timeout
        while True:
            deploy = new_deploy()
            if deploy is not None or self._clock() >= deadline:
                return deploy, response.status
            self._sleep(queued_interval)

    def wait_for_deploy(self, service_id, deploy_id, *, timeout=900.0, interval=5.0, on_poll=None):
        """Poll until the deploy is terminal; return it. Raises RenderAPIError on timeout."""
        deadline = self._clock() + timeout
        while True:
            deploy = self.get_deploy(service_id, deploy_id)
            if on_poll:
                on_poll(deploy)
            if deploy.get("status") in DEPLOY_TERMINAL:
                return deploy
            if self._clock() >= deadline:
                raise RenderAPIError(
                    f"deploy {deploy_id} of service {service_id} still {deploy.get('status')} "
                    f"after {timeout:.0f}s", resource=f"deploy {deploy_id}")
            self._sleep(interval)

    def list_events(self, service_id, *, event_type=None, start_time=None, end_time=None,
                    max_items=None):
        params = {}
        if event_type:
            params["type"] = event_type
        if start_time:
            params["startTime"] = start_time
        if end_time:
            params["endTime"] = end_time
        return list(self.paginate(f"/services/{_encode(service_id)}/events", "event", params=params,
                                  resource=f"events of service {service_id}", max_items=max_items))

    # -- postgres ---------------------------------------------------------------

    def list_postgres(self, *, name=None, max_items=None):
        params = {"name": name} if name else {}
        return list(self.paginate("/postgres", "postgres", params=params, resource="postgres instances",
                                  max_items=max_items))

    def get_postgres(self, postgres_id):
        return self.get(f"/postgres/{_encode(postgres_id)}", resource=f"postgres {postgres_id}")

    def find_postgres(self, id_or_name):
        if _looks_like_id(id_or_name):
            return self.get_postgres(id_or_name)
        found = [p for p in self.list_postgres(name=id_or_name) if p.get("name") == id_or_name]
        if not found:
            raise RenderAPIError(f"postgres named {id_or_name!r} not found", status=404,
                                 resource=f"postgres {id_or_name}")
        if len(found) > 1:
            ids = ", ".join(p["id"] for p in found)
            raise RenderAPIError(f"several postgres instances are named {id_or_name!r} ({ids}); give the ID")
        return self.get_postgres(found[0]["id"])

    def get_connection_info(self, postgres_id):
        return self.get(f"/postgres/{_encode(postgres_id)}/connection-info",
                        resource=f"postgres {postgres_id}")

    def list_credentials(self, postgres_id):
        """A bare (not cursor-wrapped, not paginated) list of ``{username, default, ...}``."""
        body = self.get(f"/postgres/{_encode(postgres_id)}/credentials",
                        resource=f"postgres {postgres_id}")
        if body is None:
            return []
        if not isinstance(body, list):
            raise RenderAPIError(f"postgres {postgres_id}: expected a list of credentials")
        return body

    def create_credential(self, postgres_id, username):
        """POST a new PostgreSQL user (202, no body); never creates it twice on retry."""
        def exists():
            return next((c for c in self.list_credentials(postgres_id) if c.get("username") == username), None)

        return self.request("POST", f"/postgres/{_encode(postgres_id)}/credentials",
                            body={"username": username},
                            resource=f"credential {username} of postgres {postgres_id}", check=exists)

    def delete_credential(self, postgres_id, username):
        self.request("DELETE", f"/postgres/{_encode(postgres_id)}/credentials/{_encode(username)}",
                     resource=f"credential {username} of postgres {postgres_id}",
                     missing_ok_on_retry=True)

    def list_exports(self, postgres_id):
        """Render's own exports of the instance: a bare list of ``{id, createdAt, url?}``."""
        body = self.get(f"/postgres/{_encode(postgres_id)}/export", resource=f"exports of postgres {postgres_id}")
        if body is None:
            return []
        if not isinstance(body, list):
            raise RenderAPIError(f"postgres {postgres_id}: expected a list of exports")
        return body

    def create_export(self, postgres_id):
        """Ask Render for an export (202, no body); never two on retry: an ambiguous
        failure is retried only when the list shows no export the attempt made."""
        known = {export.get("id") for export in self.list_exports(postgres_id)}

        def made():
            return next((e for e in self.list_exports(postgres_id) if e.get("id") not in known), None)

        return self.request("POST", f"/postgres/{_encode(postgres_id)}/export",
                            resource=f"export of postgres {postgres_id}", check=made)

    # -- logs ------------------------------------------------------------------

    def query_logs(self, owner_id, resources, *, start_time=None, end_time=None, direction="backward",
                   filters=None, page_limit=PAGE_LIMIT, max_logs=1000, max_pages=50):
        """Time-paginated log query: follow hasMore with nextStartTime/nextEndTime.

        Returns ``{"logs": [...], "has_more": bool, "next_start_time", "next_end_time"}``;
        ``has_more`` stays true when ``max_logs`` or ``max_pages`` stopped the walk.
        """
        params = {"ownerId": owner_id, "resource": list(resources), "direction": direction,
                  "limit": min(page_limit, PAGE_LIMIT)}
        if start_time:
            params["startTime"] = start_time
        if end_time:
            params["endTime"] = end_time
        for name, values in (filters or {}).items():
            if values:
                params[name] = [values] if isinstance(values, str) else list(values)
        logs = []
        result = {"has_more": False, "next_start_time": None, "next_end_time": None}
        for _ in range(max_pages):
            page = self.get("/logs", params=params, resource=f"logs of {', '.join(resources)}") or {}
            logs.extend(page.get("logs") or [])
            result = {"has_more": bool(page.get("hasMore")),
                      "next_start_time": page.get("nextStartTime"),
                      "next_end_time": page.get("nextEndTime")}
            if not result["has_more"] or len(logs) >= max_logs:
                break
            params = dict(params, startTime=page["nextStartTime"], endTime=page["nextEndTime"])
        if len(logs) > max_logs:
            logs = logs[:max_logs]
            result["has_more"] = True
        result["logs"] = logs
        return result


def _looks_like_id(value):
    prefix = str(value).split("-", 1)[0]
    return prefix in ("srv", "crn", "dpg", "red", "evg") and "-" in str(value)
