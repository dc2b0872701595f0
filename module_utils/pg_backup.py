"""Verified pg_dump backups on the control node: manifest, checksums, storage, retention, gate.

Layout: ``<backup_dir>/<label>/<backup id>/`` holds the dump (``dump.pgc`` for
custom format, ``dump/`` for directory format), ``manifest.json`` (written once,
with a checksum over its own content) and ``verifications.json`` (what was
verified, when, at which level). Directories are 0700 and files 0600.

Verification follows pg_verifybackup: the manifest must parse and match its own
checksum, every file it lists must exist with its size and SHA-256, and no
other file may be present. Everything found is reported, not just the first.

No database access here (see pg_backup_run.py); everything is unit-testable.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import stat
import time

MANIFEST = "manifest.json"
VERIFICATIONS = "verifications.json"
MANIFEST_VERSION = 1
LEVELS = ("checksum", "toc", "restore")
CUSTOM_FILE = "dump.pgc"
DIRECTORY_NAME = "dump"
CHUNK = 1024 * 1024
BACKUP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
OWN_FILES = (MANIFEST, VERIFICATIONS)


class BackupError(Exception):
    """A backup is missing, unusable or does not verify; the message is safe to show."""


# -- time -----------------------------------------------------------------

def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


# -- private storage -------------------------------------------------------

def private_dir(path: str) -> str:
    """Create path 0700 (missing parents too), or accept an existing directory
    only when it is already ours and private. A directory we did not create is
    never chmod-ed: it may be shared on purpose, and tightening it silently
    would hide that the dump was about to land somewhere others can read."""
    try:
        os.makedirs(path, mode=0o700)
    except FileExistsError:
        check_private_dir(path)
        return path
    os.chmod(path, 0o700)  # ours: the umask may have narrowed the mode, never widened it
    return path


def check_private_dir(path: str) -> None:
    """BackupError naming path, its mode and owner, and the fix, unless it is a
    directory owned by this user with no group or other permissions."""
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise BackupError(f"{path} exists and is not a directory: set the backup directory to another path")
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != os.geteuid():
        raise BackupError(f"{path} (mode {mode:04o}) is owned by uid {st.st_uid}, not by this user "
                          f"(uid {os.geteuid()}): backups hold the whole database, so they are only written "
                          f"to a directory of our own; set the backup directory to a path that does not "
                          f"exist yet (it is created 0700) or to one this user owns with mode 0700")
    if mode & 0o077:
        raise BackupError(f"{path} exists with mode {mode:04o}: group or others may read it, and backups "
                          f"hold the whole database; if it is meant for backups run `chmod 700 {path}`, "
                          f"otherwise set the backup directory to a path that does not exist yet (it is "
                          f"created 0700). An existing directory is never chmod-ed for you")


def write_private(path: str, data: bytes) -> None:
    """Write a 0600 file atomically (temp file, fsync, rename)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def tighten(path: str) -> None:
    """0700 directories and 0600 files under path (pg_dump -Fd creates its own)."""
    os.chmod(path, 0o700)
    for root, dirs, files in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o700)
        for name in files:
            os.chmod(os.path.join(root, name), 0o600)


def check_backup_id(backup_id: str) -> str:
    if not BACKUP_ID_RE.match(backup_id or ""):
        raise BackupError(f"backup id {backup_id!r} must be letters, digits, '.', '_' or '-' "
                          f"(at most 100, not starting with a dot or dash)")
    return backup_id


def label_dir(backup_dir: str, label: str) -> str:
    check_backup_id(label)
    return os.path.join(backup_dir, label)


# -- dumps in progress ----------------------------------------------------------
#
# A dump is written into a hidden ".<id>.partial-<database tag>-<pid>-<random>"
# directory, renamed into place when complete. Its writer holds an exclusive
# flock on that directory for as long as it exists; the kernel drops the lock
# when the process dies, however it dies. So a partial nobody holds locked is a
# killed run's leftover. A partial younger than PARTIAL_GRACE_SECONDS is left
# alone too: it covers the instant between mkdir and flock.

PARTIAL_GRACE_SECONDS = 60


def database_tag(identity: dict) -> str:
    """A short, stable, secret-free tag naming a database in partial directory names."""
    return hashlib.sha256(_canonical(identity)).hexdigest()[:12]


def partial_name(backup_id: str, identity: dict, token: str) -> str:
    return f".{backup_id}.partial-{database_tag(identity)}-{os.getpid()}-{token}"


def lock_exclusive(path: str, *, wait: bool = True) -> int | None:
    """An fd holding an exclusive flock on path (a directory or file), or None
    when another process holds it and wait is false."""
    import fcntl

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _entries(base: str) -> list[tuple[str, str]]:
    """(name, path) of each entry of base, sorted by name; none when base is missing."""
    try:
        return [(name, os.path.join(base, name)) for name in sorted(os.listdir(base))]
    except FileNotFoundError:
        return []


def stale_partials(base: str, identity: dict, *, now: float | None = None,
                   grace: float = PARTIAL_GRACE_SECONDS, remove: bool = True) -> list[str]:
    """Partial dumps of this database under base that no live run holds (see
    above), removed unless remove is false; their paths."""
    marker = f".partial-{database_tag(identity)}-"
    now = time.time() if now is None else now
    found = []
    for name, path in _entries(base):
        if not name.startswith(".") or marker not in name:
            continue
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode) or now - st.st_mtime < grace:
            continue
        fd = lock_exclusive(path, wait=False)
        if fd is None:
            continue  # a live run is writing it
        try:
            if remove:
                (shutil.rmtree if stat.S_ISDIR(st.st_mode) else os.unlink)(path)
            found.append(path)
        finally:
            os.close(fd)
    return found


# -- hashing ---------------------------------------------------------------

class HashingWriter:
    """Write chunks to a new 0600 file and hash them as they pass: no second read."""

    def __init__(self, path: str):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.sha.update(chunk)
        view = memoryview(chunk)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(chunk)

    def close(self) -> dict:
        os.fsync(self.fd)
        os.close(self.fd)
        return {"size": self.size, "sha256": self.sha.hexdigest()}

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def sha256_file(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            sha.update(chunk)
    return sha.hexdigest()


def data_files(path: str) -> list[str]:
    """Files under a backup directory, relative, '/'-separated, sorted; manifest and
    verification record left out (like pg_verifybackup ignores backup_manifest)."""
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), path).replace(os.sep, "/")
            if rel not in OWN_FILES and not rel.startswith(f"{VERIFICATIONS}.tmp-"):
                found.append(rel)
    return sorted(found)


def describe_files(path: str) -> list[dict]:
    """Size and SHA-256 of every data file (directory format: read after pg_dump finished)."""
    return [{"path": rel, "size": os.path.getsize(os.path.join(path, rel)),
             "sha256": sha256_file(os.path.join(path, rel))} for rel in data_files(path)]


# -- manifest --------------------------------------------------------------

def _canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def seal(manifest: dict) -> dict:
    """The manifest with manifest_checksum over everything else in it."""
    body = {k: v for k, v in manifest.items() if k != "manifest_checksum"}
    return body | {"manifest_checksum": hashlib.sha256(_canonical(body)).hexdigest()}


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


# -- verification ----------------------------------------------------------

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


# -- restoring: the row-count check inside the restore's transaction ----------

ROW_COUNT_MISMATCH = "rkr: row counts differ from the manifest"

_ROW_COUNT_CHECK = """
DO $@outer@$
DECLARE
  t record;
  n bigint;
  bad text[] := ARRAY[]::text[];
BEGIN
  FOR t IN SELECT * FROM pg_catalog.jsonb_to_recordset($@inner@$@expected@$@inner@$::jsonb)
             AS x("schema" text, "table" text, "name" text, "rows" bigint) LOOP
    IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', t."schema", t."table")) IS NULL THEN
      bad := bad || pg_catalog.format('%s: missing', t."name");
      CONTINUE;
    END IF;
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %I.%I', t."schema", t."table") INTO n;
    IF n <> t."rows" THEN
      bad := bad || pg_catalog.format('%s: %s restored, %s in the manifest', t."name", n, t."rows");
    END IF;
  END LOOP;
  IF pg_catalog.cardinality(bad) > 0 THEN
    RAISE EXCEPTION '@mismatch@ in % table(s): %', pg_catalog.cardinality(bad),
      pg_catalog.array_to_string(bad, '; ');
  END IF;
END
$@outer@$;
"""


def row_count_check_sql(manifest: dict, token: str) -> str:
    """A DO block that raises, naming every table whose row count differs from
    the manifest (count(*) like the dump's counts). Run before the restore's
    COMMIT, a difference rolls the whole restore back. token: [a-z0-9]+, makes
    the dollar quotes unique."""
    if not re.fullmatch(r"[a-z0-9]+", token):
        raise ValueError("token must be lowercase letters and digits")
    expected = json.dumps([{k: t[k] for k in ("schema", "table", "name", "rows")} for t in manifest["tables"]],
                          ensure_ascii=True, separators=(",", ":"))
    return (_ROW_COUNT_CHECK.replace("@outer@", f"rkr_{token}").replace("@inner@", f"rkr_{token}_rows")
            .replace("@expected@", expected).replace("@mismatch@", ROW_COUNT_MISMATCH))


# -- finding backups, retention ----------------------------------------------

def list_backups(backup_dir: str, label: str) -> list[dict]:
    """Every backup directory under <backup_dir>/<label>: path, id, manifest or error.
    Temporary directories of a dump in progress (dot names) are left out."""
    found = []
    for name, path in _entries(label_dir(backup_dir, label)):
        if name.startswith(".") or not os.path.isdir(path):
            continue
        try:
            found.append({"path": path, "id": name, "manifest": load_manifest(path), "error": None})
        except BackupError as exc:
            found.append({"path": path, "id": name, "manifest": None, "error": str(exc)})
    return found


def newest_first(backups: list[dict]) -> list[dict]:
    good = [b for b in backups if b["manifest"]]
    return sorted(good, key=lambda b: (b["manifest"]["finished_at"], b["id"]), reverse=True)


def failed_verifications(path: str, manifest: dict) -> list[dict]:
    return [r for r in read_verifications(path)
            if not r.get("ok") and r.get("manifest_checksum") == manifest["manifest_checksum"]]


def plan_retention(backups: list[dict], identity: dict, keep: int, protect: list[str]) -> tuple[list, list]:
    """(kept, deleted) backups of this database, each with a "retention" reason.

    Only backups that passed verification count toward `keep`, so failing runs
    can never push a good backup out. Kept: every protected path, the newest
    `keep` verified backups, the newest restore-verified one (even beyond
    `keep`), and never-verified backups newer than the newest verified one (a
    run may be about to verify it). Deleted: older verified ones, backups whose
    verification only ever failed, never-verified ones older than the newest
    verified one. Nothing is deleted while no backup of this database passed
    verification. Other databases' backups and unreadable ones are never touched."""
    if keep < 1:
        raise BackupError("retention must keep at least one backup")
    protected = {os.path.realpath(p) for p in protect if p}
    ours = newest_first([b for b in backups if b["manifest"] and same_database(b["manifest"], identity)])
    levels = {b["path"]: best_level(b["path"], b["manifest"]) for b in ours}
    verified = [b for b in ours if levels[b["path"]]]
    counted = {b["path"] for b in verified[:keep]}
    restore_verified = next((b["path"] for b in verified if levels[b["path"]] == "restore"), None)
    newest_verified = verified[0]["manifest"]["finished_at"] if verified else None
    kept, deleted = [], []
    for backup in ours:
        path, level = backup["path"], levels[backup["path"]]
        if os.path.realpath(path) in protected:
            keep_it, why = True, "protected (this run depends on it)"
        elif not verified:
            keep_it, why = True, "no backup of this database passed verification yet: nothing is deleted"
        elif path in counted:
            keep_it, why = True, f"one of the newest {keep} verified (level {level})"
        elif path == restore_verified:
            keep_it, why = True, "the newest restore-verified backup"
        elif level:
            keep_it, why = False, f"verified (level {level}) but older than the newest {keep} verified"
        elif failed_verifications(path, backup["manifest"]):
            keep_it, why = False, "its verification failed"
        elif backup["manifest"]["finished_at"] > newest_verified:
            keep_it, why = True, "not verified yet, newer than the newest verified backup"
        else:
            keep_it, why = False, "never verified, older than the newest verified backup"
        (kept if keep_it else deleted).append(backup | {"retention": why})
    return kept, deleted


def prune(backup_dir: str, label: str, identity: dict, keep: int, protect: list[str], *,
          check_mode: bool = False) -> dict:
    kept, deleted = plan_retention(list_backups(backup_dir, label), identity, keep, protect)
    if not check_mode:
        for backup in deleted:
            shutil.rmtree(backup["path"])
    return {"kept": [b["path"] for b in kept], "deleted": [b["path"] for b in deleted],
            "reasons": {b["path"]: b["retention"] for b in kept + deleted}}


# -- the gate ----------------------------------------------------------------

def fingerprint(objects) -> str:
    """SHA-256 over the schema's (kind, name, definition) rows."""
    sha = hashlib.sha256()
    for row in sorted(tuple(r) for r in objects):
        sha.update(json.dumps(list(row), ensure_ascii=True).encode() + b"\n")
    return sha.hexdigest()


def object_counts(objects) -> dict:
    counts: dict[str, int] = {}
    for kind, _name, _definition in objects:
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def schema_difference(expected, actual, limit: int = 5) -> str:
    """A short description of how two object lists differ."""
    want = {tuple(r) for r in expected}
    have = {tuple(r) for r in actual}
    parts = [f"missing {kind} {name}" for kind, name, _ in sorted(want - have)[:limit]]
    parts += [f"extra or changed {kind} {name}" for kind, name, _ in sorted(have - want)[:limit]]
    more = len(want - have) + len(have - want) - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def evaluate_gate(backups: list[dict], identity: dict, *, live_fingerprint: str, min_level: str,
                  max_age_seconds: float, now: dt.datetime, this_run: str = "",
                  recheck: bool = True) -> tuple[dict | None, list[str]]:
    """(the backup that lets a risky change run, or None; why each candidate was refused).

    A backup verified in this run (this_run = its path) at min_level passes.
    Otherwise the newest backup of this database verified at min_level, younger
    than max_age_seconds and taken of the same schema (fingerprint) passes.
    With recheck, its checksums are verified again now, so a backup damaged
    since its verification cannot let the change through."""
    reasons = []
    candidates = newest_first(backups)
    if this_run:
        run_path = os.path.realpath(this_run)
        candidates = [b for b in candidates if os.path.realpath(b["path"]) == run_path] or candidates
    for bad in (b for b in backups if b["error"]):
        reasons.append(bad["error"])
    for backup in candidates:
        manifest, path = backup["manifest"], backup["path"]
        if not same_database(manifest, identity):
            reasons.append(f"{path}: manifest is for database {describe_identity(manifest['database'])}")
            continue
        level = best_level(path, manifest)
        if level is None or not level_at_least(level, min_level):
            reasons.append(f"{path}: verified at {level or 'no'} level, {min_level} required")
            continue
        from_this_run = bool(this_run) and os.path.realpath(path) == os.path.realpath(this_run)
        if not from_this_run:
            age = (now - parse_iso(manifest["finished_at"])).total_seconds()
            if age > max_age_seconds:
                reasons.append(f"{path}: {age / 3600:.1f} h old, at most {max_age_seconds / 3600:g} h allowed")
                continue
            if manifest.get("schema_fingerprint") != live_fingerprint:
                reasons.append(f"{path}: the schema changed since this backup (fingerprint differs)")
                continue
        if recheck:
            problems = file_problems(path, manifest)
            if problems:
                reasons.append(f"{path}: " + "; ".join(problems))
                continue
        return backup | {"level": level, "from_this_run": from_this_run}, reasons
    return None, reasons


def gate_message(identity: dict, inventory: str, reasons: list[str], min_level: str) -> str:
    """inventory: the -i option(s) naming the run's inventory; empty says "your inventory"."""
    why = ("; ".join(reasons[:5]) + (f"; and {len(reasons) - 5} more" if len(reasons) > 5 else "")
           if reasons else "no backup of it was found")
    return (f"no verified backup of {describe_identity(identity)} lets this change run ({why}). "
            f"Make one, verified at level {min_level}: "
            f"ansible-playbook playbooks/backup.yml {inventory or '-i <your inventory>'}")


def restore_candidate(backup_dir: str, label: str, identity: dict) -> dict:
    """The backup a restore without an explicit path uses: the newest one of this
    database verified at level restore, else the newest verified at all (its
    level is said). Never one that did not pass verification: BackupError then,
    saying what was found."""
    ours = newest_first([b for b in list_backups(backup_dir, label)
                         if b["manifest"] and same_database(b["manifest"], identity)])
    where = f"{describe_identity(identity)} under {label_dir(backup_dir, label)}"
    if not ours:
        raise BackupError(f"no backup of {where}")
    levels = [(b, best_level(b["path"], b["manifest"])) for b in ours]
    for wanted in ("restore", None):
        for backup, level in levels:
            if level and (wanted is None or level == wanted):
                skipped = [b["id"] for b in ours[:ours.index(backup)]]
                return backup | {"level": level, "skipped_newer": skipped}
    found = "; ".join(f"{b['id']}: " + ("its verification failed" if failed_verifications(b["path"], b["manifest"])
                                        else "never verified") for b in ours[:5])
    raise BackupError(f"refusing to restore: no backup of {where} passed verification ({found}). "
                      f"Take and verify one (ansible-playbook playbooks/backup.yml), or name a backup "
                      f"explicitly with -e restore_path=<dir> (its checksums are still verified first)")
