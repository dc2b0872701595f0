"""python -m localenv up|down|status|binaries — the local Render-like environment.

``up`` starts the throwaway cluster (and loads the broken production-shaped
fixture unless --empty) and the Render API simulator, writes the connection URL,
the simulator's URL and its API key to 0600 files the local inventory reads, and
is a no-op when the environment is already running; ``down`` is a no-op when
it is not. Errors end in one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys

from localenv import cluster as pg
from localenv import simulator_process

DEFAULT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".localenv")
URL_FILE = "recovery_database_url"
# The cluster itself lives in a fresh /tmp directory: the postgres OS user must
# reach it, which it cannot under e.g. /root. This file holds its path.
CLUSTER_POINTER = "cluster_dir"


def _cluster_dir(state_dir: str) -> str | None:
    try:
        with open(os.path.join(state_dir, CLUSTER_POINTER)) as handle:
            path = handle.read().strip()
    except FileNotFoundError:
        return None
    return path if os.path.exists(os.path.join(path, pg.STATE_FILE)) else None


def _write_url_file(state_dir: str, url: str) -> None:
    path = os.path.join(state_dir, URL_FILE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(url)


def up(state_dir: str, *, scale: int, empty: bool, simulator: bool = True) -> pg.Cluster:
    existing = _cluster_dir(state_dir)
    if existing:
        cluster = pg.Cluster.load(existing)
        cluster.start()
        print(f"local environment already up: PostgreSQL on 127.0.0.1:{cluster.port}")
    else:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        cluster = pg.create()
        print(f"started Render-like PostgreSQL on 127.0.0.1:{cluster.port} "
              f"(SSL, scram-sha-256, owner {cluster.app_user})")
        try:
            if not empty:
                from demoapp import fixture

                counts = fixture.build(cluster.url(), scale=scale)
                print(f"loaded the broken production-shaped fixture: {counts['tables']} tables, "
                      f"{counts['foreign_keys']} foreign keys, {counts['rows']} rows")
        except BaseException:
            # Never leave a cluster that a later `up` would call ready over a half-built database.
            with contextlib.suppress(pg.ClusterError):  # the first error is the one to report
                cluster.stop(remove=True)
            raise
        # Only a fully built environment is recorded: this pointer is what "already up" trusts.
        with open(os.path.join(state_dir, CLUSTER_POINTER), "w") as handle:
            handle.write(cluster.base_dir)
    _write_url_file(state_dir, cluster.url())
    if simulator:
        url = simulator_process.start(state_dir, cluster.base_dir)
        print(f"Render API simulator on {url} (API key in {state_dir}/{simulator_process.KEY_FILE})")
    return cluster


def down(state_dir: str) -> None:
    """Stop and remove whatever is up; a no-op (exit 0) when nothing is."""
    if not os.path.isdir(state_dir):
        print("local environment is not up")
        return
    if simulator_process.stop(state_dir):
        print("Render API simulator stopped")
    base = _cluster_dir(state_dir)
    for name in (URL_FILE, CLUSTER_POINTER):
        if os.path.exists(os.path.join(state_dir, name)):
            os.unlink(os.path.join(state_dir, name))
    if not base:
        print("local environment is not up")
        return
    pg.Cluster.load(base).stop(remove=True)
    print("local environment stopped and removed")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localenv", description=__doc__)
    parser.add_argument("--dir", default=os.environ.get("LOCALENV_DIR", DEFAULT_DIR),
                        help="state directory (default: .localenv in the project)")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("up", help="start the environment (idempotent)")
    start.add_argument("--scale", type=_positive, default=1, help="fixture size multiplier (>= 1)")
    start.add_argument("--empty", action="store_true", help="no fixture, an empty app database")
    start.add_argument("--no-simulator", action="store_true", help="do not start the Render API simulator")
    sub.add_parser("down", help="stop the environment and delete its data")
    sub.add_parser("status", help="say whether it runs, and where")
    sub.add_parser("binaries", help="say where PostgreSQL's server binaries are, or what to install")
    args = parser.parse_args(argv)
    try:
        if args.command == "binaries":
            print(pg.find_bin_dir())
        elif args.command == "up":
            up(args.dir, scale=args.scale, empty=args.empty, simulator=not args.no_simulator)
        elif args.command == "down":
            down(args.dir)
        else:
            base = _cluster_dir(args.dir)
            if not base:
                print("local environment is not up")
                return 1
            cluster = pg.Cluster.load(base)
            state = "running" if cluster.is_running() else "stopped"
            print(f"PostgreSQL {state} on 127.0.0.1:{cluster.port}, data in {cluster.data_dir}")
    except (pg.ClusterError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # already written for an operator
        return 1
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if not _is_database_error(exc):
            raise
        print(f"error: the database refused: {_one_line(exc)}", file=sys.stderr)
        return 1
    return 0


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        # The failing program's own message, not the argv (it may be long).
        detail = (exc.stderr or exc.stdout or b"")
        detail = detail.decode(errors="replace") if isinstance(detail, bytes) else detail
        program = os.path.basename(str(exc.cmd[0] if isinstance(exc.cmd, list | tuple) else exc.cmd))
        first = detail.strip().splitlines()[0] if detail.strip() else f"exit status {exc.returncode}"
        return f"{program} failed: {first}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_database_error(exc: BaseException) -> bool:
    """psycopg2's errors, without importing psycopg2 for `down`/`status`."""
    psycopg2 = sys.modules.get("psycopg2")
    return psycopg2 is not None and isinstance(exc, psycopg2.Error)


if __name__ == "__main__":
    sys.exit(main())
