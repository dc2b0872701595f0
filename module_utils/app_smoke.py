"""Smoke requests through the app's own API after a deploy, and their cleanup.

A smoke request is ``{name, method, url, headers, body, status, capture}``: ``url`` is an
http(s) URL or a path joined to the app's public URL; ``body`` is sent as JSON; ``status``
is the status (or statuses) it must answer; ``capture`` names fields of its JSON answer
(``{org_id: id}``, ``{first: items.0.id}``) that later requests use as ``${org_id}`` in
their URL, header values and body (a string that is exactly ``${name}`` keeps the
captured value's JSON type). The smoke requests run in order and stop at the first that
fails; the cleanup requests then always run, each one whose captures exist (a cleanup
that needs an id the failed create never returned is skipped, saying so).

Header values are secrets (they come from the vault): they never appear in a result or a
message, nor does a captured value that a header carries (a token from a login). What is
shown is redacted with module_utils/redaction.py and a URL is shown without its query.
Pure but for ``send`` (module_utils/app_http.py), which the unit tests replace.
"""

from __future__ import annotations

import re

from ansible.module_utils.app_http import EXCERPT, join_url, where
from ansible.module_utils.app_http import send as http_send
from ansible.module_utils.recovery_inputs import placeholder_error
from ansible.module_utils.redaction import credential_parts, redact

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
SMOKE, CLEANUP = "smoke", "cleanup"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


# ----------------------------------------------------------------------------- templating

def placeholders(value) -> set[str]:
    """The capture names ``${name}`` that value (a string, or a dict/list of them) uses."""
    if isinstance(value, str):
        return set(_PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*(placeholders(v) for v in value)) if value else set()
    return set()


def fill(value, captures: dict):
    """value with each ``${name}`` replaced by captures[name], recursively; a string that is
    exactly one placeholder becomes the captured value itself (an integer id stays one)."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return captures[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: _text(captures[m.group(1)]), value)
    if isinstance(value, dict):
        return {k: fill(v, captures) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [fill(v, captures) for v in value]
    return value


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def extract(document, path: str):
    """The field ``path`` (dotted; a number indexes a list) of a parsed JSON answer."""
    current = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise LookupError(path)
    return current


# ----------------------------------------------------------------------------- the inputs

def _statuses(value) -> list[int]:
    values = value if isinstance(value, list | tuple) else [value]
    statuses = sorted({int(v) for v in values})
    if not statuses or any(not 100 <= s <= 599 for s in statuses):
        raise ValueError
    return statuses


def normalize(entries, phase: str) -> tuple[list[dict], list[str]]:
    """(requests with every field present, problems); a problem names the request, never a header value."""
    out, problems = [], []
    for index, entry in enumerate(entries or []):
        where_ = f"{phase} request #{index + 1}"
        if not isinstance(entry, dict):
            problems.append(f"{where_} must be a mapping")
            continue
        name = entry.get("name")
        where_ += f" ({name})" if isinstance(name, str) and name else ""
        request = {"name": name, "method": str(entry.get("method") or "GET").upper(), "url": entry.get("url"),
                   "headers": entry.get("headers") or {}, "body": entry.get("body"),
                   "capture": entry.get("capture") or {}, "status": entry.get("status") or [200]}
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where_}: name is required")
        if request["method"] not in METHODS:
            problems.append(f"{where_}: method must be one of {', '.join(METHODS)}")
        if not isinstance(request["url"], str) or not request["url"].strip():
            problems.append(f"{where_}: url is required")
        try:
            request["status"] = _statuses(request["status"])
        except (TypeError, ValueError):
            problems.append(f"{where_}: status must be an HTTP status (100-599) or a list of them")
        if not isinstance(request["capture"], dict) or not all(
                isinstance(k, str) and _NAME.match(k) and isinstance(v, str) and v
                for k, v in request["capture"].items()):
            problems.append(f"{where_}: capture maps names (letters, digits, _) to JSON field paths such as "
                            "id or data.id")
            request["capture"] = {}
        if not isinstance(request["headers"], dict):
            problems.append(f"{where_}: headers must be a mapping of names to values")
            request["headers"] = {}
        problems += header_problems(request["headers"], where_)
        out.append(request)
    return out, problems


def header_problems(headers: dict, where_: str) -> list[str]:
    problems = []
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            problems.append(f"{where_}: {name!r} is not a valid header name")
            continue
        if not isinstance(value, str | int | float):
            problems.append(f"{where_}: header {name} must be a string")
        elif any(c in str(value) for c in "\r\n"):
            problems.append(f"{where_}: header {name} holds a line break")
        elif placeholder_error(str(value), f"header {name}"):
            problems.append(f"{where_}: {placeholder_error(str(value), f'header {name}')}")
    return problems


def plan_problems(smoke: list[dict], cleanup: list[dict], headers: dict, public_url: str) -> list[str]:
    """Why these (normalized) requests cannot run, one line each, before anything is sent: a
    ``${name}`` no earlier smoke request captures, two requests of one name, a bad URL, a header."""
    problems = header_problems(headers, "app_deploy_smoke_headers")
    seen, made = set(), set()
    for phase, requests in ((SMOKE, smoke), (CLEANUP, cleanup)):
        for request in requests:
            label = f"{phase} request {request['name']!r}"
            if request["name"] in seen:
                problems.append(f"{label}: two requests have this name")
            seen.add(request["name"])
            used = placeholders([request["url"], request["headers"], request["body"]])
            unknown = sorted(used - made)
            if unknown:
                problems.append(f"{label} uses {', '.join('${' + u + '}' for u in unknown)}, which no "
                                f"{'earlier ' if phase == SMOKE else ''}smoke request captures")
            url = request["url"] if isinstance(request["url"], str) else ""
            if url and not url.startswith("${"):
                try:
                    join_url(public_url, _PLACEHOLDER.sub("x", url))
                except ValueError as exc:
                    problems.append(f"{label}: {exc}")
            twice = sorted(set(request["capture"]) & made)
            if twice:
                problems.append(f"{label} captures {', '.join(twice)} again")
            made |= set(request["capture"])
    return problems


def plan_lines(smoke: list[dict], cleanup: list[dict], public_url: str) -> list[str]:
    """What would be sent (check mode): method, URL (placeholders unfilled), expectation; no header value."""
    lines = []
    for phase, requests in ((SMOKE, smoke), (CLEANUP, cleanup)):
        for request in requests:
            try:
                url = where(join_url(public_url, request["url"])) if not request["url"].startswith("${") \
                    else request["url"]
            except ValueError:
                url = request["url"]
            extra = f"; captures {', '.join(request['capture'])}" if request["capture"] else ""
            names = f"; headers {', '.join(sorted({*request['headers']}))}" if request["headers"] else ""
            lines.append(f"{phase} '{request['name']}': {request['method']} {url} (expects "
                         f"{' or '.join(map(str, request['status']))}{extra}{names})")
    return lines


# ----------------------------------------------------------------------------- running them


def _send_one(request: dict, phase: str, captures: dict, *, public_url: str, headers: dict, timeout: float,
              send, secret_values: set) -> dict:
    url = join_url(public_url, _text(fill(request["url"], captures)))
    sent_headers = {k: _text(v) for k, v in {**headers, **request["headers"]}.items()}
    for name, value in list(sent_headers.items()):
        if placeholders(value):
            for used in placeholders(value):
                secret_values.update(credential_parts([_text(captures[used])]))
            sent_headers[name] = _text(fill(value, captures))
        secret_values.update(credential_parts([sent_headers[name]]))
    body = fill(request["body"], captures)
    label = f"{phase} request '{request['name']}' ({request['method']} {where(url)})"
    entry = {"name": request["name"], "phase": phase, "method": request["method"], "url": where(url),
             "expected": request["status"], "status": None, "ok": False, "skipped": False, "captured": []}
    answer = send(request["method"], url, headers=sent_headers, body=body, timeout=timeout)
    entry["status"] = answer.status
    wanted = " or ".join(map(str, request["status"]))
    if answer.status is None:
        entry["msg"] = f"{label} got no answer: {answer.error}"
        return entry
    if answer.status not in request["status"]:
        excerpt = " ".join(answer.text.split())[:EXCERPT]
        entry["msg"] = f"{label} answered {answer.status}, expected {wanted}" + (f": {excerpt}" if excerpt else "")
        return entry
    for name, path in request["capture"].items():
        try:
            value = extract(answer.json, path) if answer.is_json else None
        except LookupError:
            value = None
        if not isinstance(value, str | int | float | bool) or value == "":
            what = "a JSON answer" if not answer.is_json else f"the field {path} (a string or a number)"
            entry["msg"] = f"{label} answered {answer.status} but without {what}, so ${{{name}}} is unknown"
            return entry
        captures[name] = value
        entry["captured"].append(name)
    entry["ok"] = True
    entry["msg"] = f"{label} answered {answer.status}"
    return entry


def _skipped(request: dict, phase: str, why: str, public_url: str) -> dict:
    try:
        url = where(join_url(public_url, request["url"])) if not request["url"].startswith("${") else request["url"]
    except ValueError:
        url = request["url"]
    return {"name": request["name"], "phase": phase, "method": request["method"], "url": url,
            "expected": request["status"], "status": None, "ok": None, "skipped": True, "captured": [],
            "msg": f"{phase} request '{request['name']}' not sent: {why}"}


def run_requests(smoke: list[dict], cleanup: list[dict], *, public_url: str, headers: dict | None = None,
                 timeout: float = 10.0, send=http_send, secrets=()) -> dict:
    """Send the smoke requests in order (stopping at the first failure), then every cleanup request
    whose captures exist. Returns {ok, requests, failed_request, cleanup_failed, captured, msg}, redacted."""
    captures: dict = {}
    secret_values = {s for s in secrets or [] if isinstance(s, str) and s}
    secret_values.update(credential_parts([_text(v) for v in (headers or {}).values()]))
    results, failed = [], None
    options = {"public_url": public_url, "headers": dict(headers or {}), "timeout": timeout, "send": send,
               "secret_values": secret_values}
    for request in smoke:
        if failed is not None:
            results.append(_skipped(request, SMOKE, f"the smoke request '{failed['name']}' failed", public_url))
            continue
        result = _send_one(request, SMOKE, captures, **options)
        results.append(result)
        if not result["ok"]:
            failed = result
    for request in cleanup:
        missing = sorted(placeholders([request["url"], request["headers"], request["body"]]) - set(captures))
        if missing:
            results.append(_skipped(request, CLEANUP, f"{', '.join('${' + m + '}' for m in missing)} was never "
                                                      "captured (its smoke request failed or was not sent), so "
                                                      "there is nothing of it to remove", public_url))
            continue
        results.append(_send_one(request, CLEANUP, captures, **options))
    cleanup_failed = [r for r in results if r["phase"] == CLEANUP and r["ok"] is False]
    result = {"ok": failed is None and not cleanup_failed, "requests": results,
              "failed_request": failed["name"] if failed else None,
              "cleanup_failed": [r["name"] for r in cleanup_failed],
              "captured": sorted(captures), "msg": summary(results, failed, cleanup_failed)}
    return redact(result, sorted(secret_values), mask_urls=True)


def summary(results: list[dict], failed: dict | None, cleanup_failed: list[dict]) -> str:
    """One message: what failed (the request, its answer) and what the cleanup did."""
    smoke = [r for r in results if r["phase"] == SMOKE]
    cleanup = [r for r in results if r["phase"] == CLEANUP]
    passed = sum(1 for r in smoke if r["ok"])
    cleaned = sum(1 for r in cleanup if r["ok"])
    skipped = sum(1 for r in cleanup if r["skipped"])
    tail = (f"cleanup: {cleaned} of {len(cleanup)} answered as expected"
            + (f", {skipped} not needed" if skipped else "")) if cleanup else "no cleanup requests"
    parts = []
    if failed is not None:
        parts.append(f"{failed['msg']} ({passed} of {len(smoke)} smoke requests passed)")
    if cleanup_failed:
        parts.append("test data may be left behind: " + "; ".join(r["msg"] for r in cleanup_failed))
    if not parts:
        parts.append(f"{passed} smoke request{'s' if passed != 1 else ''} answered as expected")
    return "; ".join(parts) + f"; {tail}"
