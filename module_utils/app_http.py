"""The one HTTP client for the app itself (its public URL), as opposed to Render's API.

The post-deploy proof asks the app, from the outside as a user would, whether it
answers: 503 while maintenance mode is on, 200 on its health path and frontend
after the deploy, and what the smoke requests expect. An answer is an ``Answer``
(status, parsed JSON, a short text excerpt) or an error that never holds a header
value; the caller redacts what it shows (module_utils/redaction.py).

``send`` and ``sleep`` are injectable so the unit tests run without a server.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

try:
    import requests

    HAS_REQUESTS = True
except ImportError:  # reported by the modules through missing_required_lib
    requests = None
    HAS_REQUESTS = False

USER_AGENT = "render-key-recovery-proof/0.1"
EXCERPT = 200  # characters of an unexpected answer's body shown to the operator


@dataclass
class Answer:
    """One request's outcome: status None means no answer (``error`` says why)."""

    status: int | None
    json: object = None
    text: str = ""
    error: str = ""
    is_json: bool = False
    headers: dict = field(default_factory=dict)


def join_url(public_url: str, target: str) -> str:
    """target when it is an absolute http(s) URL; a path starting with / joined to public_url.
    Raises ValueError saying what is wrong (never guesses)."""
    target = (target or "").strip()
    if target.lower().startswith(("http://", "https://")):
        return target
    if not target.startswith("/"):
        raise ValueError(f"{target!r} is neither an http(s) URL nor a path starting with /")
    base = (public_url or "").strip()
    if not base.lower().startswith(("http://", "https://")):
        raise ValueError(f"{target} is a path, but the app has no public http(s) URL to join it to")
    return base.rstrip("/") + target


def where(url: str) -> str:
    """The scheme, host and path of url, without its query (which may carry a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def send(method: str, url: str, *, headers: dict | None = None, body=None, timeout: float = 10.0,
         session=None) -> Answer:
    """One request; never raises for an HTTP or network failure, never follows a redirect
    (a 302 to a login page is not a 200)."""
    if not HAS_REQUESTS:
        return Answer(None, error="the Python library `requests` is required")
    sent = {"User-Agent": USER_AGENT, "Accept": "application/json, text/html;q=0.9, */*;q=0.5"}
    sent.update(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body)
        sent.setdefault("Content-Type", "application/json")
    try:
        response = (session or requests).request(method, url, headers=sent, data=data, timeout=timeout,
                                                 allow_redirects=False)
    except requests.exceptions.Timeout:
        return Answer(None, error=f"no answer within {timeout:g} s")
    except requests.exceptions.ConnectionError as exc:
        return Answer(None, error=f"could not connect ({_root_cause(exc)})")
    except requests.exceptions.RequestException as exc:
        return Answer(None, error=f"request failed ({type(exc).__name__})")
    text = response.content.decode("utf-8", "replace") if response.content else ""
    parsed, is_json = None, False
    if text.strip():
        with contextlib.suppress(ValueError):  # an HTML page: no JSON to capture from
            parsed, is_json = json.loads(text), True
    return Answer(response.status_code, parsed, text[:EXCERPT], is_json=is_json,
                  headers={k.lower(): v for k, v in response.headers.items()})


def _root_cause(exc: BaseException) -> str:
    """The innermost exception's class name (e.g. ConnectionRefusedError): its text may hold the URL."""
    seen, cur = set(), exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        nxt = getattr(cur, "reason", None)
        nxt = nxt if isinstance(nxt, BaseException) else (cur.__cause__ or cur.__context__)
        if nxt is None and cur.args and isinstance(cur.args[0], BaseException):
            nxt = cur.args[0]
        if nxt is None:
            break
        cur = nxt
    return type(cur).__name__


def probe(url: str, *, expect, attempts: int = 1, delay: float = 0.0, timeout: float = 10.0,
          send=send, sleep=time.sleep, clock=time.monotonic) -> dict:
    """GET url until it answers one of ``expect`` (a status or statuses), at most ``attempts``
    times, ``delay`` seconds apart. Returns {url, expected, status, ok, attempts, seconds, msg}
    (status None: never answered)."""
    expected = sorted({int(s) for s in ([expect] if isinstance(expect, int | str) else expect)})
    attempts = max(1, int(attempts))
    started = clock()
    answer = Answer(None, error="not tried")
    tried = 0
    for tried in range(1, attempts + 1):
        answer = send("GET", url, timeout=timeout)
        if answer.status in expected:
            break
        if tried < attempts:
            sleep(delay)
    ok = answer.status in expected
    seconds = round(clock() - started, 1)
    wanted = " or ".join(str(s) for s in expected)
    got = f"answered {answer.status}" if answer.status is not None else answer.error
    msg = (f"{where(url)} answered {answer.status}" if ok else
           f"{where(url)} {got}, expected {wanted} (after {tried} attempt{'s' if tried > 1 else ''}"
           f" over {seconds:g} s)")
    return {"url": where(url), "expected": expected, "status": answer.status, "ok": ok, "attempts": tried,
            "seconds": seconds, "msg": msg}
