"""HTTP to Render's public REST API: authentication, retries, pagination, errors.

``RenderHTTP`` is the transport under ``render_api.RenderClient`` (the resources):

- bearer authentication; the key is held in a ``_Secret`` and never appears in an
  exception, a repr, a log line or a module result;
- cursor pagination with ``limit=100`` over Render's ``[{"cursor": ..., "<resource>": {...}}]``
  wrappers;
- bounded retries with exponential backoff and jitter on 429 (honouring ``Retry-After``,
  else ``Ratelimit-Reset`` read as seconds), 5xx, connection errors and timeouts;
- POSTs that may have taken effect are retried only after a ``check()`` shows that they did
  not; an unanswered one (read timeout, dropped connection, 502/504) is watched for a while
  first (render_in_flight), so a request Render finishes late is found, never doubled;
- errors that name the resource and the status: ``Render API key rejected (HTTP 401)``,
  ``service srv-... not found (HTTP 404)``.

``DEFAULT_BASE_URL`` is the one place Render's own base URL is named. ``sleep``, ``clock``
and ``jitter`` are injectable so the unit tests run instantly.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from urllib.parse import quote

from ansible.module_utils.redaction import REDACTED, mask_credentials
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
    """Holds the API key; prints as REDACTED (module_utils/redaction.py) however it is printed."""

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


class RenderHTTP:
    """Authenticated, retried calls to Render's API (requests); the resources are RenderClient's."""

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
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={REDACTED})"

    # -- low level -----------------------------------------------------------

    def _scrub(self, text):
        text = "" if text is None else str(text)
        key = self._key.reveal()
        if key and key in text:
            text = text.replace(key, REDACTED)
        return text

    def scrub(self, text):
        """``text`` (e.g. a log line put into a result) without the API key or any password in
        a URL or a PGPASSWORD= assignment (credentials an app may print in its logs)."""
        return mask_credentials(self._scrub(text))

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
