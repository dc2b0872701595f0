"""Start or stop a throwaway PostgreSQL cluster to restore-verify a backup into.

    python scratch_cluster.py start        -> prints {"base_dir": ..., "admin_url": ...} (a secret: no_log)
    python scratch_cluster.py stop BASE_DIR -> stops it and deletes its data

Uses the project's localenv.cluster (SSL, scram-sha-256, a free loopback port).
"""

from __future__ import annotations

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, ROOT)

from localenv import cluster as pg  # noqa: E402


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["start"]:
            cluster = pg.create()
            print(json.dumps({"base_dir": cluster.base_dir, "admin_url": cluster.admin_url(),
                              "server": os.path.basename(os.path.dirname(cluster.bin_dir))}))
            return 0
        if argv[:1] == ["stop"] and len(argv) == 2:
            if os.path.exists(os.path.join(argv[1], pg.STATE_FILE)):
                pg.Cluster.load(argv[1]).stop(remove=True)
            return 0
    except pg.ClusterError as exc:
        print(f"scratch cluster: {exc}", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
