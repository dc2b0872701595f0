"""Where verified pg_dump backups live on the control node, and how they are written.

Layout: ``<backup_dir>/<label>/<backup id>/`` holds the dump (``dump.pgc`` for
custom format, ``dump/`` for directory format), ``manifest.json`` (written once,
with a checksum over its own content; pg_backup_manifest.py) and
``verifications.json`` (what was verified, when, at which level). Directories
are 0700 and files 0600, written atomically; a dump in progress is a locked
hidden directory, renamed into place when complete; files are hashed as they
are written.

No database access here; everything is unit-testable.
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
CUSTOM_FILE = "dump.pgc"
DIRECTORY_NAME = "dump"
CHUNK = 1024 * 1024
BACKUP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
OWN_FILES = (MANIFEST, VERIFICATIONS)


class BackupError(Exception):
    """A backup is missing, unusable or does not verify; the message is safe to show."""


# -- time ----------------------------------------------------------------------

def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


# -- private storage -----------------------------------------------------------

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


def canonical_json(body: dict) -> bytes:
    """Stable bytes for hashing a JSON value (sorted keys, no whitespace, ASCII)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


# -- dumps in progress ---------------------------------------------------------
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
    return hashlib.sha256(canonical_json(identity)).hexdigest()[:12]


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


def dir_entries(base: str) -> list[tuple[str, str]]:
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
    for name, path in dir_entries(base):
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


# -- hashing -------------------------------------------------------------------

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
