"""A backup's manifest and what it was verified at.

The manifest (manifest.json beside the dump) is sealed with a SHA-256 over its
own content. Verification follows pg_verifybackup: the manifest must parse and
match its own checksum, be for this database, every file it lists must exist
with its size and SHA-256, and no other file may be present. Everything found
is reported, not just the first. Each verification is recorded in
verifications.json, bound to the manifest's checksum.

No database access here; everything is unit-testable.
"""

from __future__ import annotations

import hashlib
import json
import os

from ansible.module_utils.pg_backup_store import (
    MANIFEST,
    VERIFICATIONS,
    BackupError,
    canonical_json,
    data_files,
    iso,
    sha256_file,
    utc_now,
    write_private,
)

MANIFEST_VERSION = 1
# Verification levels, weakest first: each includes the ones before it.
LEVELS = ("checksum", "toc", "restore")


# -- the manifest --------------------------------------------------------------

def seal(manifest: dict) -> dict:
    """The manifest with manifest_checksum over everything else in it."""
    body = {k: v for k, v in manifest.items() if k != "manifest_checksum"}
    return body | {"manifest_checksum": hashlib.sha256(canonical_json(body)).hexdigest()}


def write_manifest(path: str, manifest: dict) -> dict:
    sealed = seal(manifest)
    write_private(os.path.join(path, MANIFEST),
                  (json.dumps(sealed, indent=2, sort_keys=True) + "\n").encode())
    return sealed


def load_manifest(path: str) -> dict:
    """The manifest of the backup at path; BackupError if missing, unparsable or altered."""
    file = os.path.join(path, MANIFEST)
    try:
        with open(file, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise BackupError(f"{file}: manifest missing") from None
    except OSError as exc:
        raise BackupError(f"{file}: manifest unreadable: {exc.strerror}") from None
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupError(f"{file}: manifest corrupt: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise BackupError(f"{file}: manifest corrupt: not a JSON object")
    stored = manifest.get("manifest_checksum")
    if not stored:
        raise BackupError(f"{file}: manifest corrupt: it has no manifest_checksum")
    if seal(manifest)["manifest_checksum"] != stored:
        raise BackupError(f"{file}: manifest checksum mismatch: the manifest was changed after it was "
                          f"written")
    if manifest.get("manifest_version") != MANIFEST_VERSION:
        raise BackupError(f"{file}: manifest version {manifest.get('manifest_version')!r} is not "
                          f"supported (expected {MANIFEST_VERSION})")
    missing = [k for k in ("database", "files", "tables", "format", "finished_at", "pg_dump_version")
               if k not in manifest]
    if missing:
        raise BackupError(f"{file}: manifest corrupt: missing {', '.join(missing)}")
    return manifest


def summary(manifest: dict) -> dict:
    """The manifest without its long lists: what a play prints and later roles read."""
    keys = ("backup_id", "label", "database", "format", "jobs", "compress", "server_version",
            "pg_dump_version", "started_at", "finished_at", "dump_seconds", "toc_entries", "total_bytes",
            "rows", "objects", "schema_fingerprint", "manifest_checksum", "hashing")
    return {k: manifest.get(k) for k in keys} | {"files": len(manifest.get("files", [])),
                                                 "tables": len(manifest.get("tables", []))}


# -- which database a backup is of ---------------------------------------------

def identity_of(conn: dict) -> dict:
    """What names a database: host, port and name (never the user or password)."""
    return {"host": str(conn["login_host"]).lower(), "port": int(conn["login_port"]),
            "name": conn["login_db"]}


def describe_identity(identity: dict) -> str:
    return f"{identity['name']} on {identity['host']}:{identity['port']}"


def same_database(manifest: dict, identity: dict) -> bool:
    theirs = manifest.get("database") or {}
    return (str(theirs.get("host", "")).lower() == identity["host"]
            and int(theirs.get("port") or 0) == identity["port"]
            and theirs.get("name") == identity["name"])


def check_identity(manifest: dict, identity: dict, path: str = "") -> None:
    if not same_database(manifest, identity):
        where = f"{path}: " if path else ""
        raise BackupError(f"{where}manifest is for database {describe_identity(manifest['database'])}, "
                          f"not {describe_identity(identity)}")


# -- verification --------------------------------------------------------------

def file_problems(path: str, manifest: dict) -> list[str]:
    """Every difference between the files on disk and the manifest: missing,
    extra, size, then checksum (skipped for files that already failed)."""
    listed = {f["path"]: f for f in manifest["files"]}
    present = set(data_files(path))
    problems = [f"{rel}: missing (listed in the manifest)" for rel in sorted(set(listed) - present)]
    problems += [f"{rel}: extra file not in the manifest" for rel in sorted(present - set(listed))]
    for rel in sorted(set(listed) & present):
        expected = listed[rel]
        size = os.path.getsize(os.path.join(path, rel))
        if size != expected["size"]:
            diff = size - expected["size"]
            problems.append(f"{rel}: size mismatch: {size} bytes on disk, {expected['size']} in the "
                            f"manifest ({'+' if diff > 0 else ''}{diff} bytes)")
        elif sha256_file(os.path.join(path, rel)) != expected["sha256"]:
            problems.append(f"{rel}: checksum mismatch: SHA-256 differs from the manifest at the same size")
    return problems


def verify_checksums(path: str, identity: dict | None = None) -> dict:
    """Level `checksum`: the manifest is intact, is for this database, and every file matches it."""
    manifest = load_manifest(path)
    if identity is not None:
        check_identity(manifest, identity, path)
    problems = file_problems(path, manifest)
    if problems:
        raise BackupError(f"{path}: {len(problems)} problem(s): " + "; ".join(problems))
    return manifest


def level_at_least(level: str, minimum: str) -> bool:
    return LEVELS.index(level) >= LEVELS.index(minimum)


def read_verifications(path: str) -> list[dict]:
    try:
        with open(os.path.join(path, VERIFICATIONS)) as handle:
            records = json.load(handle)
    except (OSError, ValueError):
        return []
    return records if isinstance(records, list) else []


def record_verification(path: str, manifest: dict, level: str, ok: bool, run_id: str, message: str) -> dict:
    record = {"level": level, "ok": ok, "at": iso(utc_now()), "run_id": run_id,
              "manifest_checksum": manifest["manifest_checksum"], "message": message}
    records = [*read_verifications(path), record][-50:]
    write_private(os.path.join(path, VERIFICATIONS), (json.dumps(records, indent=2) + "\n").encode())
    return record


def passed_levels(path: str, manifest: dict) -> list[str]:
    """Levels recorded as passed for exactly this manifest, weakest first."""
    passed = {r.get("level") for r in read_verifications(path)
              if r.get("ok") and r.get("manifest_checksum") == manifest["manifest_checksum"]}
    return [level for level in LEVELS if level in passed]


def best_level(path: str, manifest: dict) -> str | None:
    passed = passed_levels(path, manifest)
    return passed[-1] if passed else None
