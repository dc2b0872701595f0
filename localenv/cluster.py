"""Start and stop a throwaway PostgreSQL cluster that behaves like Render Postgres.

What makes it Render-like:
- connections only over SSL (a self-signed certificate, clients verify it),
- scram-sha-256 for every login, no trust lines,
- the application connects as a non-superuser login role that owns its database
  and nothing else (NOSUPERUSER NOCREATEDB NOCREATEROLE).

The cluster's state (port, paths, generated passwords) lives in ``state.json``
inside the cluster directory, mode 0600, so a later process can find it again.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

SUPERUSER = "postgres"
STATE_FILE = "state.json"


class ClusterError(RuntimeError):
    """The cluster could not be started, reached or stopped."""


@dataclass
class Cluster:
    base_dir: str
    bin_dir: str
    port: int
    superuser_password: str = field(repr=False)
    app_user: str
    app_password: str = field(repr=False)
    app_database: str
    host: str = "127.0.0.1"

    @property
    def data_dir(self) -> str:
        return os.path.join(self.base_dir, "data")

    @property
    def ca_cert(self) -> str:
        return os.path.join(self.base_dir, "server.crt")

    def url(self, database: str | None = None, *, user: str | None = None,
            password: str | None = None) -> str:
        """A libpq URL as Render hands it out, plus the CA to verify against."""
        user = user or self.app_user
        if password is None:
            password = self.superuser_password if user == SUPERUSER else self.app_password
        database = database or self.app_database
        return (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self.port}/{quote(database, safe='')}"
            f"?sslmode=verify-full&sslrootcert={quote(self.ca_cert, safe='/')}"
        )

    def admin_url(self, database: str = "postgres") -> str:
        return self.url(database, user=SUPERUSER)

    def save(self) -> None:
        path = os.path.join(self.base_dir, STATE_FILE)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(self), handle, indent=2)

    @classmethod
    def load(cls, base_dir: str) -> Cluster:
        path = os.path.join(base_dir, STATE_FILE)
        try:
            with open(path) as handle:
                return cls(**json.load(handle))
        except FileNotFoundError:
            raise ClusterError(f"no cluster state at {path}; start one first") from None

    # -- lifecycle ---------------------------------------------------------

    def is_running(self) -> bool:
        return os.path.exists(os.path.join(self.data_dir, "postmaster.pid")) and _run_as_owner(
            [os.path.join(self.bin_dir, "pg_ctl"), "status", "-D", self.data_dir],
            check=False,
        ).returncode == 0

    def stop(self, *, remove: bool = False) -> None:
        if os.path.isdir(self.data_dir) and self.is_running():
            _run_as_owner([os.path.join(self.bin_dir, "pg_ctl"), "stop", "-D", self.data_dir,
                           "-m", "fast", "-w", "-t", "60"])
        if remove:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def start(self) -> None:
        """(Re)start an initialised cluster on its port, or a new free one if taken."""
        if self.is_running():
            return
        log = os.path.join(self.base_dir, "server.log")
        for attempt in range(5):
            proc = _run_as_owner(
                [os.path.join(self.bin_dir, "pg_ctl"), "start", "-D", self.data_dir, "-w",
                 "-t", "60", "-l", log, "-o", f"-p {self.port}"],
                check=False,
            )
            if proc.returncode == 0:
                self.save()
                return
            # The port may have been taken between picking it and binding it.
            if attempt < 4:
                self.port = free_port()
        raise ClusterError(f"PostgreSQL did not start; see {log}:\n{_tail(log)}")


def find_bin_dir() -> str:
    """The newest installed PostgreSQL server binaries, or a clear error."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
    )
    for candidate in reversed(candidates):
        if os.access(os.path.join(candidate, "initdb"), os.X_OK):
            return candidate
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(os.path.realpath(initdb))
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        if os.access(os.path.join(out.stdout.strip(), "initdb"), os.X_OK):
            return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    raise ClusterError(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found. "
        "On Debian/Ubuntu run `make setup` as root (it installs the `postgresql` package), "
        "or install it yourself: `apt-get install postgresql`. Elsewhere install the "
        "PostgreSQL server package and put its bin directory on PATH."
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create(base_dir: str | None = None, *, app_user: str = "app_owner",
           app_database: str = "appdb") -> Cluster:
    """initdb a new cluster, configure it like Render, start it, create the app owner."""
    bin_dir = find_bin_dir()
    ours = base_dir is None or not os.path.exists(base_dir)
    if base_dir is None:
        # Not under pytest's 0700 tmp: the postgres OS user must be able to reach it.
        base_dir = tempfile.mkdtemp(prefix="render-like-pg-")
    os.makedirs(base_dir, exist_ok=True)
    if os.path.exists(os.path.join(base_dir, "data")):
        raise ClusterError(f"{base_dir} already holds a cluster; stop and remove it first")
    cluster = Cluster(
        base_dir=os.path.abspath(base_dir),
        bin_dir=bin_dir,
        port=free_port(),
        superuser_password=secrets.token_urlsafe(24),
        app_user=app_user,
        app_password=secrets.token_urlsafe(24),
        app_database=app_database,
    )
    try:
        _initialise(cluster)
    except BaseException:
        # A half-made cluster is of no use: stop it and delete its files
        # (the whole directory only when this call created it).
        with contextlib.suppress(ClusterError):  # the first error is the one to report
            cluster.stop(remove=ours)
        shutil.rmtree(cluster.data_dir, ignore_errors=True)
        raise
    return cluster


def _initialise(cluster: Cluster) -> None:
    os.chmod(cluster.base_dir, 0o700)
    _give_to_owner(cluster.base_dir)
    pwfile = os.path.join(cluster.base_dir, "superuser.pw")
    _write_private(pwfile, cluster.superuser_password)
    _run_as_owner([
        os.path.join(cluster.bin_dir, "initdb"), "-D", cluster.data_dir, "-U", SUPERUSER,
        "--auth=scram-sha-256", f"--pwfile={pwfile}", "--encoding=UTF8",
        "--locale=C.UTF-8", "--no-sync",
    ])
    os.unlink(pwfile)
    _write_certificate(cluster)
    _configure(cluster)
    cluster.save()
    cluster.start()
    _create_app_owner(cluster)


def _configure(cluster: Cluster) -> None:
    conf = os.path.join(cluster.data_dir, "postgresql.conf")
    with open(conf, "a") as handle:
        handle.write(
            "\n# Render-like settings (localenv/cluster.py)\n"
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{cluster.base_dir}'\n"
            "ssl = on\n"
            f"ssl_cert_file = '{cluster.ca_cert}'\n"
            f"ssl_key_file = '{os.path.join(cluster.base_dir, 'server.key')}'\n"
            "password_encryption = 'scram-sha-256'\n"
            "max_connections = 60\n"
            "shared_buffers = 128MB\n"
            "fsync = off\n"  # throwaway data: speed over durability
            "full_page_writes = off\n"
            "synchronous_commit = off\n"
            "log_min_messages = warning\n"
            # Tests read statements per application from here (ALTER DATABASE ... SET log_statement).
            "log_line_prefix = '%m [%p] app=%a '\n"
        )
    hba = os.path.join(cluster.data_dir, "pg_hba.conf")
    with open(hba, "w") as handle:
        handle.write(
            "# Render-like: SSL and SCRAM only, nothing is trusted.\n"
            "local     all  all                 scram-sha-256\n"
            "hostssl   all  all  127.0.0.1/32   scram-sha-256\n"
            "hostnossl all  all  0.0.0.0/0      reject\n"
        )


def _create_app_owner(cluster: Cluster) -> None:
    import psycopg2
    from psycopg2 import sql

    with psycopg2.connect(cluster.admin_url()) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                        "NOREPLICATION PASSWORD %s").format(sql.Identifier(cluster.app_user)),
                [cluster.app_password],
            )
    create_database(cluster, cluster.app_database)


def create_database(cluster: Cluster, name: str, *, template: str | None = None) -> None:
    """A database owned by the app role, as Render creates it (superuser work)."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(cluster.admin_url())
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            statement = sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(cluster.app_user))
            if template:
                statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            # The owner gets CREATE on public through pg_database_owner (PG15+).
            cur.execute(statement)
    finally:
        conn.close()


def drop_database(cluster: Cluster, name: str) -> None:
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(cluster.admin_url())
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
    finally:
        conn.close()


def _write_certificate(cluster: Cluster) -> None:
    key = os.path.join(cluster.base_dir, "server.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cluster.ca_cert],
        check=True, capture_output=True,
    )
    os.chmod(key, 0o600)
    os.chmod(cluster.ca_cert, 0o644)
    _give_to_owner(key)
    _give_to_owner(cluster.ca_cert)


# -- running as the postgres OS user when we are root ----------------------

def _server_account() -> pwd.struct_passwd | None:
    """postgres refuses to run as root; as root, hand the files to `postgres`."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise ClusterError("running as root needs a `postgres` OS user to own the cluster") from None


def _give_to_owner(path: str) -> None:
    account = _server_account()
    if account:
        os.chown(path, account.pw_uid, account.pw_gid)


def _run_as_owner(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    account = _server_account()
    if account:
        argv = ["runuser", "-u", account.pw_name, "--", *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd="/")
    if check and proc.returncode != 0:
        raise ClusterError(f"{' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
    return proc


def _write_private(path: str, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    _give_to_owner(path)


def _tail(path: str, lines: int = 20) -> str:
    try:
        return "".join(Path(path).read_text().splitlines(keepends=True)[-lines:])
    except OSError:
        return "(no log)"


def wait_ready(cluster: Cluster, timeout: float = 30.0) -> None:
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(cluster.url(), connect_timeout=3).close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
