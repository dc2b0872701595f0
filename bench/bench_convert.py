"""Benchmark the key conversion side by side on copies of one large database.

    .venv/bin/python bench/bench_convert.py [--scale 1000]   # ~1.1 GB at the default scale

Builds the production-shaped broken fixture once on a throwaway cluster, copies
it (CREATE DATABASE ... TEMPLATE) and measures, in one run on the same machine:

  ours            the conversion with the role's DEFAULTS, read from
                  roles/convert_keys/defaults/main.yml (what recover.yml runs),
                  after-commit work included: its verdicts are the ones that count
  ours, all inside  fk_validation=in_transaction, index_build=in_transaction,
                  value_check=round_trip: every FK validated, every index rebuilt and
                  every value cast back inside the transaction (the defaults until issue 10)
  ours, round_trip  the defaults with value_check=round_trip (what the shape check saves)
  ours + C        the defaults with collation C (bytewise index builds; not a default:
                  it changes how the application's strings sort and compare)
  vacuum full     the sum of VACUUM FULL over the affected tables: the cost of one rewrite
  naive           one ALTER per column, as the old script did (same drops and recreations,
                  FKs validated and indexes rebuilt inside)

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
import yaml  # noqa: E402
from ansible.module_utils import key_conversion_sql as q  # noqa: E402
from ansible.module_utils.key_conversion_plan import ConversionRequest  # noqa: E402
from ansible.module_utils.key_conversion_run import RunOptions, convert, plan_only  # noqa: E402

from demoapp import fixture  # noqa: E402
from localenv import cluster as pg  # noqa: E402

TEMPLATE = "bench_template"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEVERS = ("fk_validation", "index_build", "value_check", "collation")
ALL_INSIDE = {"fk_validation": "in_transaction", "index_build": "in_transaction", "value_check": "round_trip"}


def role_defaults() -> tuple[dict, int]:
    """The levers as the role runs them by default (collation "" = the database
    default), and its after-commit worker count."""
    with open(os.path.join(ROOT, "roles", "convert_keys", "defaults", "main.yml"), encoding="utf-8") as handle:
        defaults = yaml.safe_load(handle)
    levers = {lever: defaults[f"convert_keys_{lever}"] for lever in LEVERS}
    levers["collation"] = levers["collation"] or None
    return levers, int(defaults["convert_keys_after_commit_workers"])


def copy(cluster, name: str) -> str:
    pg.drop_database(cluster, name)
    pg.create_database(cluster, name, template=TEMPLATE)
    conn = psycopg2.connect(cluster.url(name))
    conn.autocommit = True
    conn.cursor().execute("VACUUM ANALYZE")  # the same starting point for every contender
    conn.close()
    return cluster.url(name)


def run_ours(url: str, levers: dict, workers: int) -> dict:
    conn = psycopg2.connect(url)
    start = time.monotonic()
    outcome = convert(conn, ConversionRequest(**levers),
                      RunOptions(connect=lambda: psycopg2.connect(url), after_commit_workers=workers))
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
    plan = plan_only(conn, ConversionRequest(**ALL_INSIDE))["plan"]  # its drops and recreations
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

    defaults, workers = role_defaults()
    module_defaults = {lever: getattr(ConversionRequest, lever) for lever in LEVERS}
    print(f"role defaults: {defaults}, after-commit workers {workers}")
    if defaults != module_defaults:
        print(f"NOTE: the module's own defaults differ: {module_defaults}")
    cluster = pg.create()
    try:
        pg.create_database(cluster, TEMPLATE)
        started = time.monotonic()
        counts = fixture.build(cluster.url(TEMPLATE), scale=args.scale)
        conn = psycopg2.connect(cluster.url(TEMPLATE))
        with conn.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database())")
            size = cur.fetchone()[0]
        plan = plan_only(conn, ConversionRequest(**defaults))["plan"]
        conn.close()  # a template must have no sessions to be copied
        print(f"fixture: scale {args.scale}, {size / 2**30:.2f} GB, {counts['rows']} rows, "
              f"{counts['foreign_keys']} FKs, built in {time.monotonic() - started:.0f} s; "
              f"conversion rewrites {len(plan.tables)} tables, {len(plan.columns)} columns; by default "
              f"{len(plan.deferred_indexes)} indexes built and {len(plan.deferred_validations)} FKs validated "
              f"after COMMIT")

        relations = [t["relation"] for t in plan.tables]
        contenders = {
            "ours": lambda url: run_ours(url, defaults, workers),
            "ours, all inside": lambda url: run_ours(url, defaults | ALL_INSIDE, workers),
            "ours, round_trip": lambda url: run_ours(url, defaults | {"value_check": "round_trip"}, workers),
            "ours + C": lambda url: run_ours(url, defaults | {"collation": "C"}, workers),
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
        ratios = {}
        for name in ours:
            total = [r["naive"]["total"] / r[name]["total"] for r in rounds]
            lock = [r[name]["lock"] / r["vacuum full"]["total"] for r in rounds]
            ratios[name] = (median_of(total), median_of(lock))
            print(f"{'naive / ' + name + ' (total)':<48}{ratios[name][0]:>6.2f}   target >= 1.7"
                  f"   rounds {', '.join(f'{v:.2f}' for v in total)}")
            print(f"{name + ' lock window / VACUUM FULL sum':<48}{ratios[name][1]:>6.2f}   target <= 1.6"
                  f"   rounds {', '.join(f'{v:.2f}' for v in lock)}")
        print()
        total, lock = ratios["ours"]
        print(f"verdict, defaults ({', '.join(f'{k}={v}' for k, v in defaults.items())}):")
        print(f"  naive / ours {total:.2f} >= 1.7: {'met' if total >= 1.7 else 'MISSED'}")
        print(f"  lock window / VACUUM FULL {lock:.2f} <= 1.6: {'met' if lock <= 1.6 else 'MISSED'}")
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
