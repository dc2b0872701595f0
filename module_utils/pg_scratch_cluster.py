"""A throwaway PostgreSQL cluster on the control node: initdb, start, stop, remove.

Restore verification and the conversion's rehearsal restore a backup into a
scratch database; without a scratch server of the operator's, they get one of
these. It is reached the way Render Postgres is:
- connections only over SSL (a self-signed certificate, clients verify it),
- scram-sha-256 for every login, no trust lines,
- on 127.0.0.1 and a free port, its socket in its own directory.

The cluster's state (port, paths, the generated superuser password) lives in
``state.json`` inside the cluster directory, mode 0600, so a later process can
find it again and stop it. The superuser password reaches initdb through a 0600
file, never argv. As root, the files are handed to the ``postgres`` OS user and
the server programs run as it (PostgreSQL refuses to run as root).

Needs PostgreSQL server binaries (initdb, pg_ctl) and openssl on the control node.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

from ansible.module_utils.pg_client_programs import ToolError, find_client

SUPERUSER = "postgres"
STATE_FILE = "state.json"


class ClusterError(RuntimeError):
    """The cluster could not be started, reached or stopped; the message is safe to show."""


@dataclass
class ScratchCluster:
    base_dir: str
    bin_dir: str
    port: int
    superuser_password: str = field(repr=False)
    host: str = "127.0.0.1"

    @property
    def data_dir(self) -> str:
        return os.path.join(self.base_dir, "data")

    @property
    def ca_cert(self) -> str:
        return os.path.join(self.base_dir, "server.crt")

    @property
    def server_major(self) -> str:
        """The major version, as the versioned directory of the binaries names it (e.g. '16')."""
        return os.path.basename(os.path.dirname(self.bin_dir))

    def url(self, database: str = "postgres", *, user: str = SUPERUSER, password: str | None = None) -> str:
        """A libpq URL verifying the server against the cluster's own CA."""
        if password is None:
            password = self.superuser_password
        return (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self.port}/{quote(database, safe='')}"
            f"?sslmode=verify-full&sslrootcert={quote(self.ca_cert, safe='/')}"
        )

    def admin_url(self, database: str = "postgres") -> str:
        """The superuser's URL (a secret)."""
        return ScratchCluster.url(self, database, user=SUPERUSER, password=self.superuser_password)

    def save(self) -> None:
        path = os.path.join(self.base_dir, STATE_FILE)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(self), handle, indent=2)

    @classmethod
    def load(cls, base_dir: str):
        """The cluster whose state.json is in base_dir (fields another class added are ignored)."""
        path = os.path.join(base_dir, STATE_FILE)
        try:
            with open(path) as handle:
                state = json.load(handle)
        except FileNotFoundError:
            raise ClusterError(f"no cluster state at {path}; start one first") from None
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in state.items() if name in known})

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
    """The newest installed PostgreSQL server binaries (where initdb is), or a clear error."""
    try:
        return os.path.dirname(os.path.realpath(find_client("initdb")))
    except ToolError:
        raise ClusterError(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found on the control node: install "
            "the PostgreSQL server package (Debian/Ubuntu: apt-get install postgresql) and put its bin "
            "directory on PATH") from None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create(base_dir: str | None = None, *, prefix: str = "pg-scratch-",
           make: Callable[..., ScratchCluster] = ScratchCluster,
           then: Callable[[ScratchCluster], None] | None = None) -> ScratchCluster:
    """initdb a new cluster (in base_dir, or a new temporary directory named prefix...),
    configure it for SSL and scram-sha-256 only, start it, then run `then` on it.

    `make` builds the cluster object from base_dir, bin_dir, port and superuser_password
    (a subclass may add fields). A cluster that fails half-way is stopped and its files
    deleted (the whole directory only when this call created it)."""
    bin_dir = find_bin_dir()
    ours = base_dir is None or not os.path.exists(base_dir)
    if base_dir is None:
        # Not under a 0700 directory of the caller's: the postgres OS user must be able to reach it.
        base_dir = tempfile.mkdtemp(prefix=prefix)
    os.makedirs(base_dir, exist_ok=True)
    if os.path.exists(os.path.join(base_dir, "data")):
        raise ClusterError(f"{base_dir} already holds a cluster; stop and remove it first")
    cluster = make(base_dir=os.path.abspath(base_dir), bin_dir=bin_dir, port=free_port(),
                   superuser_password=secrets.token_urlsafe(24))
    try:
        _initialise(cluster)
        if then is not None:
            then(cluster)
    except BaseException:
        with contextlib.suppress(ClusterError):  # the first error is the one to report
            cluster.stop(remove=ours)
        shutil.rmtree(cluster.data_dir, ignore_errors=True)
        raise
    return cluster


def remove(base_dir: str) -> bool:
    """Stop the cluster in base_dir and delete its files; False when none is there."""
    if not os.path.exists(os.path.join(base_dir, STATE_FILE)):
        return False
    ScratchCluster.load(base_dir).stop(remove=True)
    return True


def _initialise(cluster: ScratchCluster) -> None:
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


def _configure(cluster: ScratchCluster) -> None:
    conf = os.path.join(cluster.data_dir, "postgresql.conf")
    with open(conf, "a") as handle:
        handle.write(
            "\n# A throwaway cluster reached like Render Postgres: SSL and scram-sha-256 only\n"
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
            "# SSL and SCRAM only, nothing is trusted.\n"
            "local     all  all                 scram-sha-256\n"
            "hostssl   all  all  127.0.0.1/32   scram-sha-256\n"
            "hostnossl all  all  0.0.0.0/0      reject\n"
        )


def _write_certificate(cluster: ScratchCluster) -> None:
    key = os.path.join(cluster.base_dir, "server.key")
    proc = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cluster.ca_cert],
        check=False, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise ClusterError(f"openssl could not make the cluster's certificate: {proc.stderr.strip()[:300]}")
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
