"""Benchmark: bare pg_dump vs our dump with streaming SHA-256 vs our restore verification.

    .venv/bin/python bench/bench_backup.py [--size-mb 512] [--repeat 5] [--format custom]

Starts its own throwaway cluster (localenv: SSL, scram-sha-256, the non-superuser
owner), loads a large production-shaped fixture (demoapp's broken fixture with
--fixture demoapp --scale N, else a generated one of about --size-mb of table
data: uuid keys, foreign keys, indexes, text and jsonb payloads), then times
each step --repeat times and prints the medians. Bare and ours alternate which
goes first, so drift on a shared machine (page cache, other load) favours
neither; the load average is printed because on a busy 2-core machine the
ratios move by several percent between runs. Client CPU is this process and
its child programs (pg_dump, pg_restore), not the server. A script, never a
timed test.

Targets (issue 4): dump+hash / bare pg_dump <= 1.05; restore verification / dump <= 1.2.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import ansible.module_utils  # noqa: E402

if os.path.join(ROOT, "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(os.path.join(ROOT, "module_utils"))

import psycopg2  # noqa: E402
from ansible.module_utils.pg_backup_dump import take_backup  # noqa: E402
from ansible.module_utils.pg_backup_verification import verify_backup  # noqa: E402
from ansible.module_utils.pg_client_programs import find_client, libpq_env  # noqa: E402

from localenv import cluster as pg  # noqa: E402

GENERATED = """
CREATE TABLE organizations (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL,
                            created timestamptz NOT NULL DEFAULT now());
CREATE TABLE users (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                    organization_id uuid NOT NULL REFERENCES organizations(id),
                    email text NOT NULL, profile jsonb);
CREATE TABLE documents (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                        owner_id uuid NOT NULL REFERENCES users(id), title text, body text);
CREATE TABLE events (id bigserial PRIMARY KEY, user_id uuid REFERENCES users(id),
                     document_id uuid REFERENCES documents(id), kind text, payload jsonb,
                     at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON users (organization_id);
CREATE INDEX ON documents (owner_id);
CREATE INDEX ON events (user_id);
CREATE INDEX ON events (document_id);
"""


def build_generated(url: str, size_mb: int) -> None:
    users = size_mb * 630  # ~1 MB of table data per 630 users with their documents and events
    orgs = max(10, users // 50)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(GENERATED)
        cur.execute("INSERT INTO organizations (name) SELECT 'org ' || g FROM generate_series(1, %s) g", (orgs,))
        cur.execute("""
            INSERT INTO users (organization_id, email, profile)
            SELECT o.id, 'user' || g || '@example.com',
                   jsonb_build_object('n', g, 'tag', md5(g::text))
              FROM generate_series(1, %s) g
              JOIN (SELECT id, row_number() OVER () - 1 AS i FROM organizations) o ON o.i = g %% %s
        """, (users, orgs))
        cur.execute("""
            INSERT INTO documents (owner_id, title, body)
            SELECT u.id, 'doc ' || d, md5(random()::text) || repeat(md5(u.id::text || d), 3)
              FROM users u, generate_series(1, 3) d
        """)
        cur.execute("""
            INSERT INTO events (user_id, document_id, kind, payload)
            SELECT owner_id, id, (ARRAY['view', 'edit', 'share'])[1 + e % 3],
                   jsonb_build_object('e', e, 'r', md5(random()::text))
              FROM documents, generate_series(1, 2) e
        """)
    conn.close()
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    conn.close()


def build_fixture(args, url: str) -> None:
    if args.fixture == "demoapp":
        from demoapp import fixture

        fixture.build(url, scale=args.scale)
    else:
        build_generated(url, args.size_mb)


def client_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


CPU: dict[str, list[float]] = {}


def timed(func, name: str = ""):
    start, cpu = time.monotonic(), client_cpu()
    result = func()
    if name:
        CPU.setdefault(name, []).append(client_cpu() - cpu)
    return time.monotonic() - start, result


def bare_dump(url: str, target: str, fmt: str, jobs: int) -> None:
    """What an operator would run by hand: pg_dump straight to a file."""
    params = {"database_url": url, "connect_timeout": 10}
    argv = [find_client("pg_dump"), "--no-password", f"--format={fmt}", f"--file={target}"]
    if fmt == "directory":
        argv.append(f"--jobs={jobs}")
    subprocess.run(argv, env=libpq_env(params), check=True, stdin=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=512, help="generated fixture's table data, MB")
    parser.add_argument("--fixture", choices=["generated", "demoapp"], default="generated")
    parser.add_argument("--scale", type=int, default=50, help="demoapp fixture scale")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--format", choices=["custom", "directory"], default="custom")
    parser.add_argument("--jobs", type=int, default=2, help="pg_dump -j for the directory format")
    args = parser.parse_args()

    cluster = pg.create()
    work = tempfile.mkdtemp(prefix="bench-backup-")
    try:
        url = cluster.url()
        print(f"building the {args.fixture} fixture ...", flush=True)
        seconds, _ = timed(lambda: build_fixture(args, url))
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database()), "
                        "(SELECT sum(pg_table_size(oid)) FROM pg_class WHERE relkind = 'r' "
                        "AND relnamespace = 'public'::regnamespace)")
            db_bytes, table_bytes = cur.fetchone()
        conn.close()
        print(f"fixture: database {db_bytes / 2**20:.0f} MB, table data {int(table_bytes) / 2**20:.0f} MB "
              f"(built in {seconds:.0f} s); PostgreSQL {cluster.bin_dir}; {os.cpu_count()} CPUs", flush=True)

        jobs = args.jobs if args.format == "directory" else 1
        scratch = {"database_url": cluster.admin_url(), "connect_timeout": 10}
        times: dict[str, list[float]] = {"bare": [], "ours": [], "checksum": [], "restore": []}
        size = 0
        loads = [os.getloadavg()[0]]
        for run in range(args.repeat):
            target = os.path.join(work, f"bare-{run}")

            def bare(t=target):
                times["bare"].append(timed(lambda: bare_dump(url, t, args.format, jobs), "bare")[0])
                shutil.rmtree(t, ignore_errors=True) if os.path.isdir(t) else os.unlink(t)

            def ours(r=run):
                seconds, done = timed(lambda: take_backup(
                    {"database_url": url, "connect_timeout": 10}, backup_dir=work, label="bench",
                    backup_id=f"run{r}", fmt=args.format, jobs=jobs), "ours")
                times["ours"].append(seconds)
                return done

            if run % 2:
                done = ours()
                bare()
            else:
                bare()
                done = ours()
            size = done["manifest"]["total_bytes"]
            times["checksum"].append(timed(lambda d=done: verify_backup(d["path"], "checksum", record=False),
                                           "checksum")[0])
            times["restore"].append(timed(lambda d=done: verify_backup(
                d["path"], "restore", scratch=scratch, reuse=False, record=False), "restore")[0])
            shutil.rmtree(done["path"])
            loads.append(os.getloadavg()[0])
            print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items())
                  + f" (load {loads[-1]:.1f})", flush=True)

        median = {k: statistics.median(v) for k, v in times.items()}
        rows = [
            ("bare pg_dump to a file", median["bare"], ""),
            ("our dump: streaming SHA-256, snapshot row counts, TOC, manifest", median["ours"],
             f"{median['ours'] / median['bare']:.3f} x bare (target <= 1.05)"),
            ("verify level checksum (re-hash)", median["checksum"],
             f"{median['checksum'] / median['ours']:.3f} x dump"),
            ("verify level restore (checksum + toc + scratch restore + counts)", median["restore"],
             f"{median['restore'] / median['ours']:.3f} x dump (target <= 1.2)"),
        ]
        cpu = [statistics.median(CPU[k]) for k in ("bare", "ours", "checksum", "restore")]
        print(f"\n{args.format} format, archive {size / 2**20:.1f} MB, median of {args.repeat} run(s), "
              f"load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs\n")
        width = max(len(r[0]) for r in rows)
        print(f"{'step':<{width}}  {'seconds':>8}  {'MB/s':>7}  {'client CPU s':>12}  ratio")
        print(f"{'-' * width}  {'-' * 8}  {'-' * 7}  {'-' * 12}  -----")
        for (name, seconds, ratio), cpu_seconds in zip(rows, cpu, strict=True):
            print(f"{name:<{width}}  {seconds:8.2f}  {int(table_bytes) / 2**20 / seconds:7.1f}  "
                  f"{cpu_seconds:12.2f}  {ratio}")
        print("\nMB/s = table data (MB) / seconds. Client CPU = this process and its child programs "
              "(pg_dump, pg_restore), not the server.")
    finally:
        cluster.stop(remove=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
