"""python -m localenv.render_sim --state FILE --cluster-dir DIR [--port N]

Starts the Render API simulator against the throwaway cluster whose state lives in DIR
(``python -m localenv up`` makes one in .localenv/cluster), prints its base URL on the first
line, and serves until interrupted. The API key is read from RENDER_API_KEY when set, else
from --api-key-file (created with a new random key, mode 0600, when missing); it is never
printed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading

from localenv import cluster as pg
from localenv.render_sim import start

DEFAULT_KEY_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                ".localenv", "render_api_key")


def read_or_create_key(path: str) -> str:
    if os.path.exists(path):
        with open(path) as handle:
            key = handle.read().strip()
        if key:
            return key
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    key = "rnd_sim_" + secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localenv.render_sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", required=True, help="YAML state file (see example_state.yml)")
    parser.add_argument("--cluster-dir", required=True, help="directory holding the cluster's state.json")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--api-key-file", default=DEFAULT_KEY_FILE,
                        help="file holding the API key clients must send (default: .localenv/render_api_key)")
    parser.add_argument("--workdir",
                        help="where services' rootDir and commands start (default: project root)")
    args = parser.parse_args(argv)
    key = os.environ.get("RENDER_API_KEY") or read_or_create_key(args.api_key_file)
    try:
        cluster = pg.Cluster.load(args.cluster_dir)
        cluster.start()
        server = start(args.state, cluster, api_key=key, port=args.port, workdir=args.workdir)
    except (pg.ClusterError, OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(server.base_url, flush=True)
    source = "RENDER_API_KEY" if os.environ.get("RENDER_API_KEY") else args.api_key_file
    print(f"Render API simulator: {len(server.sim.services)} service(s), {len(server.sim.postgres)} "
          f"postgres instance(s); API key from {source}; Ctrl-C stops it", file=sys.stderr, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
