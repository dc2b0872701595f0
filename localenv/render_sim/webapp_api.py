"""What the simulated web service's app answers besides its health path: a frontend page and a
small in-memory API (organizations, deals, documents) for the post-deploy smoke requests.

- ``GET /``: the frontend, an HTML page (200).
- ``POST /api/organizations {name}``, ``POST /api/deals {organization_id, title}``,
  ``POST /api/documents {deal_id, name}``: 201 with the record and its new ``id``; 422 when a
  field is missing or names a record that does not exist.
- ``GET|DELETE /api/<collection>/<id>``: 200 with the record, 204 once deleted, 404 when
  there is none. Deleting an organization that still has deals (or a deal that still has
  documents) answers 409 and logs the ``IntegrityError`` a real app's database would raise
  (a foreign-key violation), so a cleanup in the wrong order shows in the logs.
- With ``APP_API_TOKEN`` in the app's environment, ``/api/`` needs ``Authorization: Bearer <it>`` (401).

Faults (the simulator's ``/__sim__/app-faults``) come through the JSON file named by
``RENDER_SIM_APP_FAULTS_FILE``: a list of ``{"path": glob, "method": "POST"|"*", "status": 500,
"body": ..., "log": "a line", "during_maintenance": false}``; the first that matches a request
answers with its status (when given) and prints its log line (which Render's log stream then
holds); with ``during_maintenance`` it answers even while maintenance mode is on (as a cache or
a custom domain in front of Render's edge would), which every other request gets a 503 for.
"""

from __future__ import annotations

import fnmatch
import hmac
import json
import os
import threading
import uuid

FRONTEND = ("<!doctype html><html><head><title>{name}</title></head>"
            "<body><div id=\"app\">{name}</div></body></html>")

# collection: (fields a create needs, the parent's field and collection, the child collection)
COLLECTIONS = {
    "organizations": (("name",), None, "deals"),
    "deals": (("organization_id", "title"), ("organization_id", "organizations"), "documents"),
    "documents": (("deal_id", "name"), ("deal_id", "deals"), None),
}
FK_NAMES = {"deals": "deals_organization_id_fkey", "documents": "documents_deal_id_fkey"}

_store: dict[str, dict[str, dict]] = {name: {} for name in COLLECTIONS}
_lock = threading.Lock()


def faults() -> list[dict]:
    path = os.environ.get("RENDER_SIM_APP_FAULTS_FILE")
    if not path or not os.path.exists(path):
        return []
    try:
        with open(path) as handle:
            loaded = json.load(handle)
    except (OSError, ValueError):
        return []
    return [f for f in loaded if isinstance(f, dict)] if isinstance(loaded, list) else []


def matching_fault(method: str, path: str) -> dict | None:
    for fault in faults():
        if fnmatch.fnmatchcase(path, str(fault.get("path") or "")) and \
                str(fault.get("method") or "*").upper() in ("*", method):
            return fault
    return None


def _authorized(headers) -> bool:
    token = os.environ.get("APP_API_TOKEN")
    if not token:
        return True
    given = headers.get("Authorization") or ""
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def handle(method: str, path: str, headers, raw: bytes) -> tuple[int, object, list[str]]:
    """(status, payload: a dict/list for JSON, a str for HTML, None for no body, log lines)."""
    if path == "/" and method in ("GET", "HEAD"):
        return 200, FRONTEND.format(name=os.environ.get("RENDER_SERVICE_NAME", "app")), []
    parts = path.strip("/").split("/")
    if len(parts) < 2 or parts[0] != "api" or parts[1] not in COLLECTIONS or len(parts) > 3:
        return 404, {"error": f"no route for {method} {path}"}, []
    if not _authorized(headers):
        return 401, {"error": "unauthorized"}, []
    collection = parts[1]
    if len(parts) == 2:
        if method != "POST":
            return 405, {"error": f"{method} not allowed on {path}"}, []
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, {"error": "the body is not JSON"}, []
        return _create(collection, body)
    record_id = parts[2]
    if method == "GET":
        with _lock:
            record = _store[collection].get(record_id)
        return (200, record, []) if record else (404, {"error": f"{collection[:-1]} {record_id} not found"}, [])
    if method == "DELETE":
        return _delete(collection, record_id)
    return 405, {"error": f"{method} not allowed on {path}"}, []


def _create(collection: str, body) -> tuple[int, object, list[str]]:
    needed, parent, _ = COLLECTIONS[collection]
    if not isinstance(body, dict) or any(not isinstance(body.get(f), str) or not body.get(f) for f in needed):
        return 422, {"error": f"{collection[:-1]} needs {', '.join(needed)} (strings)"}, []
    with _lock:
        if parent and body[parent[0]] not in _store[parent[1]]:
            return 422, {"error": f"{parent[1][:-1]} {body[parent[0]]} does not exist"}, []
        record = {"id": str(uuid.uuid4()), **{f: body[f] for f in needed}}
        _store[collection][record["id"]] = record
    return 201, record, []


def _delete(collection: str, record_id: str) -> tuple[int, object, list[str]]:
    _, _, child = COLLECTIONS[collection]
    with _lock:
        if record_id not in _store[collection]:
            return 404, {"error": f"{collection[:-1]} {record_id} not found"}, []
        parent_field = COLLECTIONS[child][1][0] if child else None
        if child and any(r[parent_field] == record_id for r in _store[child].values()):
            line = (f"sqlalchemy.exc.IntegrityError: (psycopg2.errors.ForeignKeyViolation) update or delete on "
                    f"table \"{collection}\" violates foreign key constraint \"{FK_NAMES[child]}\" on table "
                    f"\"{child}\"")
            return 409, {"error": f"{collection[:-1]} {record_id} still has {child}"}, [line]
        del _store[collection][record_id]
    return 204, None, []
