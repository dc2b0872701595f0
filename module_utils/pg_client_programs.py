"""PostgreSQL's programs (pg_dump, pg_restore, psql, initdb): finding them, their
versions, a libpq environment, and running them.

Credentials reach the client programs through the environment of the child
process only (PGPASSWORD and friends, readable by the same OS user alone),
never through argv, so they do not show in ``ps`` or in a returned command.
Inherited PG* variables are dropped so nothing from the caller's shell
(PGSERVICE, PGOPTIONS, a stray PGPASSWORD) changes which server is reached.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import threading

from ansible.module_utils.pg_connection import connection_params
from ansible.module_utils.redaction import MASK

VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


class ToolError(Exception):
    """A client program is missing or failed; the message is safe to show."""


def _version_key(path: str) -> int:
    part = path.rstrip("/").split("/")[-2]
    return int(part) if part.isdigit() else 0


def find_client(name: str, bin_dir: str | None = None) -> str:
    """Path of a PostgreSQL program (pg_dump, pg_restore, initdb): bin_dir if given,
    else the newest /usr/lib/postgresql/<major>/bin holding it, else PATH, else
    pg_config --bindir."""
    if bin_dir:
        path = os.path.join(bin_dir, name)
        if os.access(path, os.X_OK):
            return path
        raise ToolError(f"{name} not found in {bin_dir}")
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        path = os.path.join(candidate, name)
        if os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    if found:
        return found
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        path = os.path.join(out.stdout.strip(), name)
        if os.access(path, os.X_OK):
            return path
    except (OSError, subprocess.CalledProcessError):
        pass
    raise ToolError(
        f"{name} was not found: install the PostgreSQL client tools (Debian: apt-get install "
        f"postgresql-client) at least as new as the server, or set the bin directory option")


def parse_version(text: str) -> dict:
    """{'text': '15.20', 'major': 15} from `pg_dump --version` output."""
    match = VERSION_RE.search(text or "")
    if not match:
        raise ToolError(f"cannot read a PostgreSQL version from {text.strip()[:80]!r}")
    major = int(match.group(1))
    minor = match.group(2)
    return {"text": f"{major}.{minor}" if minor is not None else str(major), "major": major}


def client_version(path: str) -> dict:
    proc = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolError(f"{path} --version failed: {proc.stderr.strip()[:200]}")
    return parse_version(proc.stdout)


def libpq_env(params: dict, *, dbname: str | None = None, application: str = "render-key-recovery") -> dict:
    """Environment for a client program reaching the database described by
    module-style connection params (database_url or login_* parts)."""
    conn = connection_params(params)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({
        "PGHOST": str(conn["host"]),
        "PGPORT": str(conn["port"]),
        "PGUSER": str(conn["user"]),
        "PGDATABASE": str(dbname or conn["dbname"]),
        "PGSSLMODE": str(conn["sslmode"]),
        "PGCONNECT_TIMEOUT": str(conn["connect_timeout"]),
        "PGAPPNAME": application,
        # Never prompt, never read the operator's ~/.pgpass for another server.
        "PGPASSFILE": os.devnull,
    })
    if conn.get("password"):
        env["PGPASSWORD"] = conn["password"]
    if conn.get("sslrootcert"):
        env["PGSSLROOTCERT"] = str(conn["sslrootcert"])
    return env


def scrub(text: str, env: dict) -> str:
    """Program output with the password removed, should a program ever echo it."""
    password = env.get("PGPASSWORD")
    return text.replace(password, MASK) if password else text


def run_client(argv: list[str], env: dict, *, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run a client program to completion; stdout and stderr captured, password scrubbed."""
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{os.path.basename(argv[0])} did not finish within {timeout} s") from None
    except OSError as exc:
        raise ToolError(f"cannot run {argv[0]}: {exc.strerror}") from None
    proc.stdout = scrub(proc.stdout, env)
    proc.stderr = scrub(proc.stderr, env)
    return proc


def client_env() -> dict:
    """The environment for a client program that connects nowhere (no PG* variables)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


# The tail of pg_restore's script held back until pg_restore exited 0: it holds
# the final COMMIT (and, since 15.14/16.10/17.6, a \\unrestrict line after it).
SCRIPT_TAIL = 64 * 1024
FINAL_COMMIT = b"\nCOMMIT;\n"


def _drain(stream, into: list[bytes]) -> threading.Thread:
    thread = threading.Thread(target=lambda: into.append(stream.read()), daemon=True)
    thread.start()
    return thread


def restore_via_psql(restore_argv: list[str], psql_argv: list[str], env: dict, before_commit: str,
                     *, chunk: int = 1024 * 1024) -> dict:
    """Run `pg_restore --single-transaction --file=-` and feed its script to psql
    (ON_ERROR_STOP), inserting before_commit (SQL) just before the script's final
    COMMIT. The COMMIT is sent only once pg_restore exited 0; any error, in the
    script or raised by before_commit, leaves the transaction uncommitted, so the
    server rolls it back. {committed, restore_rc, commit_sent, psql_rc, *_stderr}."""
    restore = subprocess.Popen(restore_argv, env=client_env(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        load = subprocess.Popen(psql_argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
    except BaseException:
        restore.kill()
        restore.wait()
        raise
    restore_err: list[bytes] = []
    load_err: list[bytes] = []
    readers = [_drain(restore.stderr, restore_err), _drain(load.stderr, load_err)]
    tail, broken, commit_sent = b"", False, False
    try:
        for data in iter(lambda: restore.stdout.read(chunk), b""):
            tail += data
            if len(tail) > SCRIPT_TAIL:
                load.stdin.write(tail[:-SCRIPT_TAIL])
                tail = tail[-SCRIPT_TAIL:]
        restore_rc = restore.wait()
        at = tail.rfind(FINAL_COMMIT)
        if restore_rc == 0 and at >= 0:
            load.stdin.write(tail[:at + 1] + before_commit.encode() + b"\n" + tail[at + 1:])
            commit_sent = True
    except BrokenPipeError:
        broken = True  # psql stopped at an error (ON_ERROR_STOP): nothing committed
    finally:
        if restore.poll() is None:
            restore.kill()
        restore_rc = restore.wait()
        try:
            load.stdin.close()
        except BrokenPipeError:
            broken = True
        load_rc = load.wait()
        for reader in readers:
            reader.join()
    text = {name: scrub(b"".join(chunks).decode("utf-8", "replace"), env)
            for name, chunks in (("restore", restore_err), ("psql", load_err))}
    return {"committed": restore_rc == 0 and commit_sent and load_rc == 0 and not broken,
            "restore_rc": restore_rc, "commit_sent": commit_sent, "psql_rc": load_rc,
            "restore_stderr": text["restore"], "psql_stderr": text["psql"]}


def toc_entries(pg_restore: str, archive: str) -> int:
    """Entries in an archive's table of contents, as `pg_restore --list` prints them."""
    proc = run_client([pg_restore, "--list", archive], client_env())
    if proc.returncode != 0:
        raise ToolError(f"pg_restore --list cannot read the archive: {first_error(proc.stderr)}")
    return count_toc_lines(proc.stdout)


def count_toc_lines(listing: str) -> int:
    return sum(1 for line in listing.splitlines() if line.strip() and not line.startswith(";"))


def first_error(stderr: str) -> str:
    """The most useful line of a client program's stderr."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    for line in lines:
        if "error:" in line or "FATAL" in line or "ERROR" in line:
            return line
    return lines[0] if lines else "(no message)"
