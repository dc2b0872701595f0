"""Benchmark the key conversion side by side on copies of one large database.

    .venv/bin/python bench/bench_convert.py [--scale 1000]   # ~1.1 GB at the default scale

Builds the production-shaped broken fixture once on a throwaway cluster, copies
it (CREATE DATABASE ... TEMPLATE) and measures, in one run on the same machine:

  ours            the module's conversion with its defaults (one ALTER per table, FKs validated,
                  every index rebuilt and every value checked round trip, all in the transaction)
  ours+after      fk_validation=after_commit (NOT VALID inside, VALIDATE after) and
                  index_build=after_commit (secondary indexes dropped inside, built again with
                  CREATE INDEX CONCURRENTLY after COMMIT)
  ours+after+shape  the same with value_check=shape (each value's length and hyphens checked
                  during the rewrite, its digits being uuid's built-in output)
  ours+after+shape+C  the same with collation C for the converted columns (uuid's own order;
                  index builds run bytewise instead of under the database's linguistic collation)
  vacuum full     the sum of VACUUM FULL over the affected tables: the cost of one rewrite
  naive           one ALTER per column, as the old script did (same drops and recreations)

Every contender runs once per round (--rounds, default 3) on a fresh copy, the
order rotated between rounds; the ratios are taken within each round and their
medians printed, so a machine whose speed drifts during the run weighs on all
contenders alike. The ratios the targets are stated in:
  naive / ours (total)                    target >= 1.7
  ours exclusive-lock window / VACUUM FULL target <= 1.6

This is a script that prints measurements, never a timed test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ansible.module_utils

ansible.module_utils.__path__.append(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils"))

import psycopg2  # noqa: E402
from ansible.module_utils import key_conversion_sql as q  # noqa: E402
from ansible.module_utils.key_conversion_plan import ConversionRequest  # noqa: E402
from ansible.module_utils.key_conversion_run import RunOptions, convert, plan_only  # noqa: E402

from demoapp import fixture  # noqa: E402
from localenv import cluster as pg  # noqa: E402

TEMPLATE = "bench_template"
AFTER = {"fk_validation": "after_commit", "index_build": "after_commit"}


def copy(cluster, name: str) -> str:
    pg.drop_database(cluster, name)
    pg.create_database(cluster, name, template=TEMPLATE)
    conn = psycopg2.connect(cluster.url(name))
    conn.autocommit = True
    conn.cursor().execute("VACUUM ANALYZE")  # the same starting point for every contender
    conn.close()
    return cluster.url(name)


def run_ours(url: str, **levers) -> dict:
    conn = psycopg2.connect(url)
    start = time.monotonic()
    outcome = convert(conn, ConversionRequest(**levers),
                      RunOptions(connect=lambda: psycopg2.connect(url)))
    total = time.monotonic() - start
    conn.close()
    assert outcome["changed"] and outcome["fk_count_before"] == outcome["fk_count_after"]
    assert not outcome["post_commit_errors"], outcome["post_commit_errors"]
    return {"total": total, "lock": outcome["timings"]["exclusive_lock"], "timings": outcome["timings"],
            "tables": len(outcome["plan"].tables), "columns": len(outcome["plan"].columns)}


def run_vacuum_full(url: str, tables: list[str]) -> dict:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    start = time.monotonic()
    with conn.cursor() as cur:
        for relation in tables:
            cur.execute(f"VACUUM FULL {relation}")
    total = time.monotonic() - start
    conn.close()
    return {"total": total, "lock": total}


def run_naive(url: str) -> dict:
    """The old script's shape: drop, then one ALTER TABLE per column, recreate."""
    conn = psycopg2.connect(url)
    plan = plan_only(conn, ConversionRequest())["plan"]
    start = time.monotonic()
    with conn.cursor() as cur:
        for statement in plan.drop_sql:
            cur.execute(statement)
        for column in plan.columns:
            cur.execute(q.alter_columns(column["relation"], [(column["column"], column["new_type"])]))
        for statement in plan.create_sql:
            cur.execute(statement)
    conn.commit()
    total = time.monotonic() - start
    conn.close()
    return {"total": total, "lock": total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=1000, help="fixture scale (1000 is about 1.1 GB)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all contenders; medians are printed")
    args = parser.parse_args()

    cluster = pg.create()
    try:
        pg.create_database(cluster, TEMPLATE)
        started = time.monotonic()
        counts = fixture.build(cluster.url(TEMPLATE), scale=args.scale)
        conn = psycopg2.connect(cluster.url(TEMPLATE))
        with conn.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database())")
            size = cur.fetchone()[0]
        plan = plan_only(conn, ConversionRequest())["plan"]
        conn.close()  # a template must have no sessions to be copied
        print(f"fixture: scale {args.scale}, {size / 2**30:.2f} GB, {counts['rows']} rows, "
              f"{counts['foreign_keys']} FKs, built in {time.monotonic() - started:.0f} s; "
              f"conversion rewrites {len(plan.tables)} tables, {len(plan.columns)} columns")

        relations = [t["relation"] for t in plan.tables]
        contenders = {
            "ours": run_ours,
            "ours+after": lambda url: run_ours(url, **AFTER),
            "ours+after+shape": lambda url: run_ours(url, **AFTER, value_check="shape"),
            "ours+after+shape+C": lambda url: run_ours(url, **AFTER, value_check="shape", collation="C"),
            "vacuum full": lambda url: run_vacuum_full(url, relations),
            "naive": run_naive,
        }
        # Rounds, each running every contender on a fresh copy, the order rotated
        # from round to round: a machine that slows down or speeds up during the
        # run weighs on all of them alike. Ratios are taken within each round.
        rounds = []
        names = list(contenders)
        for number in range(args.rounds):
            results = {}
            for name in names[number % len(names):] + names[:number % len(names)]:
                database = "bench_" + "".join(ch if ch.isalnum() else "_" for ch in name)
                results[name] = contenders[name](copy(cluster, database))
                pg.drop_database(cluster, database)
            rounds.append(results)
            print(f"round {number + 1}: " + ", ".join(f"{n} {r['total']:.1f}/{r['lock']:.1f} s"
                                                     for n, r in results.items()))

        def median_of(values):
            return statistics.median(values)

        print()
        print(f"medians of {args.rounds} rounds")
        print(f"{'contender':<22}{'total s':>10}{'exclusive lock s':>18}")
        for name in names:
            print(f"{name:<22}{median_of([r[name]['total'] for r in rounds]):>10.1f}"
                  f"{median_of([r[name]['lock'] for r in rounds]):>18.1f}")
        print()
        ours = [name for name in names if name.startswith("ours")]
        for name in ours:
            total = median_of([r["naive"]["total"] / r[name]["total"] for r in rounds])
            lock = median_of([r[name]["lock"] / r["vacuum full"]["total"] for r in rounds])
            print(f"{'naive / ' + name + ' (total)':<48}{total:>6.2f}   target >= 1.7")
            print(f"{name + ' lock window / VACUUM FULL sum':<48}{lock:>6.2f}   target <= 1.6")
        print()
        for name in ours:
            phases = {phase: round(median_of([r[name]["timings"][phase] for r in rounds]), 3)
                      for phase in rounds[0][name]["timings"]}
            print(f"{name} phases (medians): {phases}")
    finally:
        cluster.stop(remove=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
