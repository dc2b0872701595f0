"""The one client for Render's public REST API (https://api.render.com/v1).

Every Render module in this collection talks to Render through ``RenderClient``:

- bearer authentication; the key is held in a ``_Secret`` and never appears in an
  exception, a repr, a log line or a module result;
- cursor pagination with ``limit=100`` over Render's ``[{"cursor": ..., "<resource>": {...}}]``
  wrappers, and single reads of the few bare lists (``GET /postgres/{id}/credentials``);
- bounded retries with exponential backoff and jitter on 429 (honouring ``Retry-After``,
  else ``Ratelimit-Reset`` read as seconds), 5xx, connection errors and timeouts;
- POSTs that may have taken effect (create deploy, create postgres credential, export, suspend,
  resume) are retried only after reads show that they did not; an unanswered one (read timeout,
  dropped connection, 502/504) is watched for a while first (render_in_flight), so a request
  Render finishes late is found, never doubled;
- errors that name the resource and the status: ``Render API key rejected (HTTP 401)``,
  ``service srv-... not found (HTTP 404)``.

The reference for every path, status code and body shape is shared/reference/RENDER_API.md
and Render's OpenAPI spec beside it. ``sleep``, ``clock`` and ``jitter`` are injectable so the
unit tests run instantly.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import time
from urllib.parse import quote

from ansible.module_utils.render_in_flight import IN_FLIGHT_STATUSES, in_flight_wait, watch_for_effect

try:
    import requests

    HAS_REQUESTS = True
except ImportError:  # reported by the modules through missing_required_lib
    requests = None
    HAS_REQUESTS = False

DEFAULT_BASE_URL = "https://api.render.com/v1"
PAGE_LIMIT = 100
USER_AGENT = "render-key-recovery-ansible/0.1"

# Deploy statuses (SPEC deployStatus). Terminal and successful as the Render CLI reads them.
DEPLOY_TERMINAL = frozenset(
    {"live", "deactivated", "build_failed", "update_failed", "canceled", "pre_deploy_failed"})
DEPLOY_SUCCESS = frozenset({"live", "deactivated"})
DEPLOY_FAILED = DEPLOY_TERMINAL - DEPLOY_SUCCESS

REDACTED = "<redacted>"
# Credentials an app may print in its logs: the password of a URL, and psql's PGPASSWORD.
_LOG_SECRETS = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+(@)|(\bPGPASSWORD=)\S+")


class RenderAPIError(Exception):
    """A Render API call failed. The message names the resource and the status, never the key."""

    def __init__(self, message, *, status=None, method=None, path=None, resource=None,
                 request_id=None, api_message=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        self.resource = resource
        self.request_id = request_id
        self.api_message = api_message

    def __str__(self):
        return self.message

    def __repr__(self):
        return f"RenderAPIError({self.message!r}, status={self.status!r})"


class _Secret:
    """Holds the API key; prints as <redacted> however it is printed."""

    __slots__ = ("_value",)

    def __init__(self, value):
        self._value = value

    def reveal(self):
        return self._value

    def __repr__(self):
        return REDACTED

    __str__ = __repr__

    def __reduce__(self):  # never pickled with its value
        raise TypeError("the Render API key cannot be pickled")


class ApiResponse:
    """What one call returned: status, parsed JSON body (or None when empty), headers."""

    def __init__(self, status, body, headers=None, *, recovered=False):
        self.status = status
        self.body = body
        self.headers = headers or {}
        # True when an ambiguous failure was resolved by finding that the call had taken effect.
        self.recovered = recovered

    def __repr__(self):
        return f"ApiResponse(status={self.status!r}, recovered={self.recovered!r})"


class _Ambiguous(Exception):
    """Internal: the request may or may not have reached Render and taken effect."""


def _encode(segment):
    return quote(str(segment), safe="")


class RenderClient:
    """A small, well-behaved Render API client (requests)."""

    def __init__(self, api_key, base_url=DEFAULT_BASE_URL, *, timeout=30.0, max_attempts=5,
                 backoff=1.0, max_backoff=30.0, max_total_wait=180.0, session=None,
                 sleep=time.sleep, clock=time.monotonic, jitter=random.random,
                 user_agent=USER_AGENT, in_flight=None):
        if not HAS_REQUESTS:
            raise RenderAPIError("the Python library `requests` is required to talk to Render")
        if not api_key:
            raise RenderAPIError("no Render API key given (option api_key or env RENDER_API_KEY)")
        self._key = _Secret(str(api_key))
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout  # seconds to connect, and to wait for each read of the answer
        self.in_flight_wait = in_flight_wait(timeout, in_flight)
        self.max_attempts = max(1, int(max_attempts))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_total_wait = max_total_wait
        self.session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self.user_agent = user_agent

    def __repr__(self):
        return f"RenderClient(base_url={self.base_url!r}, api_key={REDACTED})"

    # -- low level -----------------------------------------------------------

    def _scrub(self, text):
        text = "" if text is None else str(text)
        key = self._key.reveal()
        if key and key in text:
            text = text.replace(key, REDACTED)
        return text

    def scrub(self, text):
        """``text`` (e.g. a log line put into a result) without the API key or any password in
        a URL or a PGPASSWORD= assignment."""
        def mask(found):
            if found.group(3):
                return found.group(3) + "********"
            return found.group(1) + "********" + found.group(2)

        return _LOG_SECRETS.sub(mask, self._scrub(text))

    def _headers(self, with_body):
        headers = {
            "Authorization": f"Bearer {self._key.reveal()}",
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }
        if with_body:
            headers["Content-Type"] = "application/json"
        return headers

    def _backoff_delay(self, attempt):
        """Exponential backoff with jitter: base * 2^attempt, capped, times [0.5, 1.0)."""
        delay = min(self.max_backoff, self.backoff * (2 ** attempt))
        return delay * (0.5 + self._jitter() / 2)

    @staticmethod
    def _header(headers, name):
        for key, value in (headers or {}).items():
            if key.lower() == name.lower():
                return value
        return None

    def _rate_limit_delay(self, headers, attempt):
        """Seconds to wait after a 429: Retry-After, else Ratelimit-Reset (seconds), else backoff."""
        retry_after = self._header(headers, "Retry-After")
        if retry_after is not None:
            try:
                return max(0.0, float(retry_after)) + self._jitter()
            except ValueError:
                try:
                    parsed = email.utils.parsedate_to_datetime(retry_after)
                except (TypeError, ValueError, IndexError):
                    parsed = None
                if parsed is not None:
                    return max(0.0, parsed.timestamp() - time.time()) + self._jitter()
        reset = self._header(headers, "Ratelimit-Reset")
        if reset is not None:
            try:
                value = float(reset)
            except ValueError:
                value = None
            if value is not None:
                # Observed as seconds until reset; the docs' prose says epoch seconds.
                if value > 1e9:
                    value = value - time.time()
                return max(0.0, value) + self._jitter()
        return self._backoff_delay(attempt)

    def _describe(self, method, path, resource):
        return resource or f"{method} {path}"

    def _error_for(self, status, method, path, resource, body, headers):
        api_message = None
        if isinstance(body, dict):
            api_message = body.get("message") or body.get("id")
        api_message = self._scrub(api_message) if api_message else None
        request_id = self._header(headers, "Render-Request-Id")
        what = self._describe(method, path, resource)
        if status == 401:
            message = f"Render API key rejected (HTTP 401) on {method} {path}"
        elif status == 403:
            message = f"Render API key may not access {what} (HTTP 403)"
        elif status == 404:
            message = f"{what} not found (HTTP 404)"
        elif status == 429:
            message = f"{what}: Render rate limit still exceeded after retries (HTTP 429)"
        elif status >= 500:
            message = f"{what}: Render server error (HTTP {status}) on {method} {path}"
        else:
            message = f"{what}: {method} {path} failed (HTTP {status})"
        if api_message:
            message += f": {api_message}"
        if request_id:
            message += f" [Render-Request-Id {self._scrub(request_id)}]"
        return RenderAPIError(message, status=status, method=method, path=path, resource=resource,
                              request_id=request_id, api_message=api_message)

    @staticmethod
    def _not_sent(exc):
        """True when a connection error proves the request never reached the server."""
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return True
        seen = set()
        cur = exc
        while cur is not None and id(cur) not in seen:
            seen.add(id(cur))
            name = type(cur).__name__
            if name in ("NewConnectionError", "ConnectionRefusedError", "NameResolutionError"):
                return True
            nxt = getattr(cur, "reason", None)
            if nxt is None and cur.args and isinstance(cur.args[0], BaseException):
                nxt = cur.args[0]
            cur = nxt if nxt is not None else (cur.__cause__ or cur.__context__)
        return False

    def _send_once(self, method, url, params, body):
        data = json.dumps(body) if body is not None else None
        response = self.session.request(
            method, url, params=params, data=data, headers=self._headers(data is not None),
            timeout=self.timeout, allow_redirects=False)
        content = response.content or b""
        parsed = None
        if content.strip():
            try:
                parsed = json.loads(content.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                parsed = {"message": content.decode("utf-8", "replace")[:300]}
        return response.status_code, parsed, dict(response.headers)

    def request(self, method, path, *, params=None, body=None, resource=None, check=None,
                idempotent=None, missing_ok_on_retry=False):
        """Send one API call with bounded retries; return an ApiResponse or raise RenderAPIError.

        ``idempotent`` (default: every method but POST) calls are retried on 429, 5xx,
        connection errors and timeouts. A non-idempotent call is retried blindly only when the
        failure proves it was not processed (429, connection refused, connect timeout); after an
        ambiguous failure (5xx, read timeout, dropped connection) ``check()`` is called first
        (for ``in_flight_wait`` seconds when unanswered): if it returns a value, the call took
        effect and that value is returned (recovered=True); if it returns None the call is
        retried; without ``check`` the error is raised.
        ``missing_ok_on_retry``: a 404 on a retried DELETE means the first attempt deleted it.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method != "POST"
        url = self.base_url + path
        waited = 0.0
        last_error = None
        retried = False
        for attempt in range(self.max_attempts):
            final = attempt == self.max_attempts - 1
            delay = None
            try:
                status, parsed, headers = self._send_once(method, url, params, body)
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                    requests.exceptions.InvalidSchema) as exc:
                raise RenderAPIError(f"invalid Render API base URL {self.base_url!r} "
                                     f"({type(exc).__name__})", method=method, path=path) from None
            except requests.exceptions.RequestException as exc:
                kind = "timed out" if isinstance(exc, requests.exceptions.Timeout) else "connection failed"
                last_error = RenderAPIError(
                    f"{self._describe(method, path, resource)}: {method} {path} {kind} "
                    f"({type(exc).__name__})", method=method, path=path, resource=resource)
                if not idempotent and not self._not_sent(exc):  # sent, unanswered: may be running
                    found = self._check_after_ambiguous(check, last_error, in_flight=True)
                    if found is not None:
                        return found
                delay = self._backoff_delay(attempt)
            else:
                if 200 <= status < 300:
                    return ApiResponse(status, parsed, headers)
                if status == 404 and missing_ok_on_retry and retried:
                    return ApiResponse(status, parsed, headers, recovered=True)
                error = self._error_for(status, method, path, resource, parsed, headers)
                if status == 429:
                    delay = self._rate_limit_delay(headers, attempt)
                elif status >= 500:
                    if not idempotent:
                        found = self._check_after_ambiguous(check, error,
                                                            in_flight=status in IN_FLIGHT_STATUSES)
                        if found is not None:
                            return found
                    delay = self._backoff_delay(attempt)
                else:
                    if retried and check is not None and status in (400, 409):
                        # A retried create that now conflicts: did an earlier attempt succeed?
                        found = check()
                        if found is not None:
                            return ApiResponse(None, found, {}, recovered=True)
                    raise error
                last_error = error
            if final:
                break
            if waited + delay > self.max_total_wait:
                raise RenderAPIError(
                    f"{last_error.message} (giving up: the next wait of {delay:.0f}s would exceed "
                    f"the {self.max_total_wait:.0f}s retry budget)",
                    status=last_error.status, method=method, path=path, resource=resource,
                    request_id=last_error.request_id, api_message=last_error.api_message) from None
            self._sleep(delay)
            waited += delay
            retried = True
        raise RenderAPIError(
            f"{last_error.message} (gave up after {self.max_attempts} attempts)",
            status=last_error.status, method=method, path=path, resource=resource,
            request_id=last_error.request_id, api_message=last_error.api_message) from None

    def _check_after_ambiguous(self, check, error, *, in_flight):
        if check is None:
            raise RenderAPIError(
                f"{error.message}; the request may have taken effect and cannot be retried safely",
                status=error.status, method=error.method, path=error.path, resource=error.resource,
                request_id=error.request_id, api_message=error.api_message) from None
        wait = self.in_flight_wait if in_flight else 0.0
        found = watch_for_effect(check, wait=wait, clock=self._clock, sleep=self._sleep)
        return None if found is None else ApiResponse(None, found, {}, recovered=True)

    def get(self, path, *, params=None, resource=None):
        return self.request("GET", path, params=params, resource=resource).body

    def paginate(self, path, key, *, params=None, resource=None, limit=PAGE_LIMIT, max_items=None,
                 max_pages=1000):
        """Yield the resources of a cursor list ``[{cursor, <key>}]``, following cursors.

        Stops on an empty page, a short page (fewer than ``limit``) or ``max_items``.
        """
        cursor = None
        count = 0
        seen_cursors = set()
        for _ in range(max_pages):
            query = dict(params or {})
            query["limit"] = limit
            if cursor:
                query["cursor"] = cursor
            page = self.get(path, params=query, resource=resource)
            if page is None:
                return
            if not isinstance(page, list):
                raise RenderAPIError(f"{self._describe('GET', path, resource)}: expected a list from "
                                     f"GET {path}, got {type(page).__name__}")
            for wrapper in page:
                item = wrapper.get(key) if isinstance(wrapper, dict) else None
                if item is None:
                    raise RenderAPIError(f"{self._describe('GET', path, resource)}: list item without "
                                         f"'{key}' from GET {path}")
                yield item
                count += 1
                if max_items is not None and count >= max_items:
                    return
            if len(page) < limit:
                return
            cursor = page[-1].get("cursor")
            if not cursor or cursor in seen_cursors:
                return
            seen_cursors.add(cursor)
        raise RenderAPIError(f"{self._describe('GET', path, resource)}: more than {max_pages} pages")

    # -- services --------------------------------------------------------------

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


# -- Ansible glue ----------------------------------------------------------------

def render_argument_spec():
    """Options every Render module shares."""
    from ansible.module_utils.basic import env_fallback

    return {
        "api_key": {"type": "str", "no_log": True, "required": True,
                    "fallback": (env_fallback, ["RENDER_API_KEY"])},
        "base_url": {"type": "str", "default": DEFAULT_BASE_URL,
                     "fallback": (env_fallback, ["RENDER_API_BASE_URL"])},
        "timeout": {"type": "float", "default": 30.0},
        "in_flight_wait": {"type": "float"},
        "max_attempts": {"type": "int", "default": 5},
    }


def run_module(argument_spec: dict, run) -> None:
    """The whole main() of a Render module: build it, run ``run(module, client)``,
    exit with its result, or fail with the API error (which never holds the key)."""
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
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
    return None if value is None else "********"
