"""Benchmark the online key conversion against the offline one, with the app writing throughout.

    .venv/bin/python bench/bench_online.py [--scale 1000] [--factor 4] [--rounds 1] [--json PATH]
    .venv/bin/python bench/bench_online.py --scale 1 --factor 4     # a quick check of the bench itself

Builds bench_convert's production-shaped broken fixture at --scale (1000 is about
1.1 GB) and at --factor times that, each once on one throwaway cluster, and at
each size converts two identical copies of it (CREATE DATABASE ... TEMPLATE):

  offline  convert() with the module's defaults (ConversionRequest(), RunOptions())
  online   convert_online() with the module's defaults: batches of 5000 rows, no
           pause, no rewrite allowed inside the swap, lock_timeout 1000 ms, the
           expand on 4 connections

A writer process (its own connection, as the app) inserts a user and updates a
document in one short transaction after another, from before the conversion
starts to after it ends. Printed side by side for each size, offline | online |
online/offline: total seconds, the longest exclusive-lock hold (the conversion's
own timing: offline its one transaction, online the swap; and the longest hold of
an ACCESS EXCLUSIVE lock on users seen in pg_locks, polled every 5 ms), the writer's worst
stall (the longest time one write took, from its first attempt to its COMMIT,
among the writes in flight during the conversion), its commits per second
during the conversion and before it, and its lost writes (committed, then not
found with their values afterwards; must be 0). Then the issue's targets:
  online exclusive lock <= 2 s at each size, and not growing with the size
  writer's worst stall (online) <= 3 s
  online total <= 3 x offline total

With --rounds N the modes alternate which goes first and medians are printed.
This is a script that prints measurements, never a timed test.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_convert as bc  # its import sets up sys.path and ansible.module_utils for us
import psycopg2
import yaml
from ansible.module_utils.key_conversion_online_run import convert_online
from ansible.module_utils.key_conversion_plan import ConversionRequest
from ansible.module_utils.key_conversion_run import RunOptions, plan_only

from demoapp import fixture
from localenv import cluster as pg

# pg_convert_keys' defaults for mode=online: online_batch_rows, online_batch_pause,
# online_allow_rewrite, online_lock_timeout (in place of lock_timeout, in ms) and online_workers.
ONLINE = {"batch_rows": 5000, "batch_pause": 0.0, "allow_rewrite": False, "lock_timeout": 1000, "workers": 4}
MODES = ("offline", "online")
WRITER_EMAIL = "@bench-online.writer"
LOCK_TARGET, STALL_TARGET, TOTAL_RATIO_TARGET = 2.0, 3.0, 3.0
# "Not growing": the larger size's lock at most 1.5 x the smaller's (linear growth
# would be --factor x), plus 0.1 s for the timing noise of sub-second holds.
GROWTH_RATIO, GROWTH_NOISE = 1.5, 0.1


# ---------------------------------------------------------------- the writer

def _write(url: str, log_path: str, stop, started) -> None:
    """Insert a user and update a document per transaction until stopped; a
    failed write is rolled back and tried again, its time counted from its
    first attempt. Writes seen committed go to log_path (JSON) at the end."""
    conn = psycopg2.connect(url, application_name="bench_online writer")
    with conn.cursor() as cur:
        cur.execute("SELECT id::text FROM organizations ORDER BY id LIMIT 1")
        organization = cur.fetchone()[0]
        cur.execute("SELECT id::text FROM documents ORDER BY id LIMIT 50")
        documents = [row[0] for row in cur.fetchall()]
    conn.commit()
    writes, errors, number = [], [], 0
    while not stop.is_set():
        number += 1
        user, document, body = str(uuid.uuid4()), documents[number % len(documents)], f"bench write {number}"
        began, committed = time.monotonic(), False
        while not committed:
            try:
                with conn.cursor() as cur:
                    # Text parameters: valid for uuid columns before and varchar(36) after.
                    cur.execute("INSERT INTO users (id, organization_id, email, display_name) "
                                "VALUES (%s, %s, %s, %s)", (user, organization, user + WRITER_EMAIL, body))
                    cur.execute("UPDATE documents SET body = %s WHERE id = %s", (body, document))
                conn.commit()
                committed = True
            except psycopg2.Error as exc:  # not committed: tried again, the stall goes on
                conn.rollback()
                errors.append(str(exc).strip()[:200])
                if stop.is_set():
                    break
                time.sleep(0.01)
        if committed:
            writes.append((user, document, body, began, time.monotonic()))
        if number == 20:
            started.set()
    conn.close()
    with open(log_path, "w", encoding="utf-8") as log:
        json.dump({"writes": writes, "errors": errors}, log)


class Writer:
    """Start it; stop() returns (writes seen committed, errors)."""

    def __init__(self, url: str, log_path: str):
        self.log_path = log_path
        context = multiprocessing.get_context("fork")
        self._stop, self._started = context.Event(), context.Event()
        self._process = context.Process(target=_write, args=(url, log_path, self._stop, self._started), daemon=True)
        self._process.start()
        if not self._started.wait(60):
            self.stop()
            raise RuntimeError("the writer did not get going")

    def stop(self) -> tuple[list, list]:
        self._stop.set()
        self._process.join(120)
        if self._process.is_alive():
            self._process.terminate()
            raise RuntimeError("the writer did not stop within 120 s")
        if self._process.exitcode != 0:
            raise RuntimeError(f"the writer died (exit code {self._process.exitcode}); its traceback is above")
        with open(self.log_path, encoding="utf-8") as log:
            logged = json.load(log)
        return logged["writes"], logged["errors"]


# ---------------------------------------------------------------- the two modes

def run_offline(url: str) -> dict:
    """bench_convert's run of ours, with the module's defaults."""
    levers = {lever: getattr(ConversionRequest, lever) for lever in bc.LEVERS}
    return bc.run_ours(url, levers, RunOptions.after_commit_workers)


def run_online(url: str) -> dict:
    conn = psycopg2.connect(url)
    start = time.monotonic()
    options = RunOptions(connect=lambda: psycopg2.connect(url), lock_timeout_ms=ONLINE["lock_timeout"])
    outcome = convert_online(conn, ConversionRequest(), options, batch_rows=ONLINE["batch_rows"],
                             pause_seconds=ONLINE["batch_pause"], allow_rewrite=ONLINE["allow_rewrite"],
                             workers=ONLINE["workers"])
    total = time.monotonic() - start
    conn.close()
    assert outcome["changed"] and outcome["fk_count_before"] == outcome["fk_count_after"]
    assert not outcome["post_commit_errors"], outcome["post_commit_errors"]
    backfill = outcome["backfill"].values()
    return {"total": total, "lock": outcome["timings"]["exclusive_lock"], "timings": outcome["timings"],
            "backfill_rows": sum(b["rows"] for b in backfill), "backfill_s": sum(b["seconds"] for b in backfill),
            "lock_attempts": len(outcome["lock_attempts"])}


RUNNERS = {"offline": run_offline, "online": run_online}


class LockSampler:
    """The longest time an ACCESS EXCLUSIVE lock on users was held, from pg_locks
    polled every 5 ms on its own connection: the hold itself, without the COMMIT's
    work after the locks are released (unlinking dropped files)."""

    def __init__(self, url: str):
        self.longest, self._stop = 0.0, threading.Event()
        self._conn = psycopg2.connect(url, application_name="bench_online lock sampler")
        self._conn.autocommit = True
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        held_since = None
        with self._conn.cursor() as cur:
            while not self._stop.is_set():
                cur.execute("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'relation' AND granted "
                            "AND mode = 'AccessExclusiveLock' AND relation = 'users'::regclass)")
                held, now = cur.fetchone()[0], time.monotonic()
                if held and held_since is None:
                    held_since = now
                elif not held and held_since is not None:
                    self.longest, held_since = max(self.longest, now - held_since), None
                time.sleep(0.005)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(10)
        self._conn.close()
        return self.longest


def lost_writes(url: str, writes: list) -> int:
    """Committed inserts not found, and documents whose body is not the last committed one."""
    last_body = {document: body for _, document, body, _, _ in writes}
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = 'users'::regclass AND attname = 'id'")
        converted = cur.fetchone()[0]
        cur.execute("SELECT id::text FROM users WHERE email LIKE %s", ("%" + WRITER_EMAIL,))
        present = {row[0] for row in cur.fetchall()}
        cur.execute("SELECT id::text, body FROM documents WHERE id::text = ANY(%s)", (list(last_body),))
        bodies = dict(cur.fetchall())
    conn.close()
    assert converted == "character varying(36)", f"users.id is {converted} after the conversion"
    return (sum(1 for user, *_ in writes if user not in present)
            + sum(1 for document, body in last_body.items() if bodies.get(document) != body))


def measure(cluster, mode: str, baseline: float) -> dict:
    """One mode on a fresh copy of the template, the writer running throughout."""
    database = f"bench_online_{mode}"
    url = bc.copy(cluster, database)
    with tempfile.TemporaryDirectory(prefix="bench-online-") as scratch:
        writer = Writer(url, os.path.join(scratch, "writes.json"))
        try:
            time.sleep(baseline)  # the writer's pace before the conversion
            sampler = LockSampler(url)
            start = time.monotonic()
            try:
                result = RUNNERS[mode](url)
            finally:
                sampled = sampler.stop()
            end = time.monotonic()
            time.sleep(0.5)  # a few writes after it as well
        finally:
            writes, errors = writer.stop()
    during = [w for w in writes if w[3] <= end and w[4] >= start]  # in flight at some time in [start, end]
    result |= {
        "lock_sampled": sampled,
        "stall": max((w[4] - w[3] for w in during), default=0.0),
        "commits_per_s": sum(1 for w in writes if start <= w[4] <= end) / max(end - start, 1e-9),
        "commits_per_s_before": sum(1 for w in writes if start - baseline <= w[4] < start) / baseline,
        "writes": len(writes), "writer_errors": len(errors), "error_samples": sorted(set(errors))[:3],
        "lost": lost_writes(url, writes),
    }
    pg.drop_database(cluster, database)
    return result


# ---------------------------------------------------------------- printing

ROWS = [  # (label, key, format, ratio printed)
    ("total s", "total", ".1f", True),
    ("exclusive lock s (own timing)", "lock", ".2f", True),
    ("exclusive lock s (pg_locks)", "lock_sampled", ".2f", True),
    ("writer worst stall s", "stall", ".2f", True),
    ("writer commits/s during", "commits_per_s", ".0f", True),
    ("writer commits/s before", "commits_per_s_before", ".0f", False),
    ("writer errors", "writer_errors", "d", False),
    ("lost writes (must be 0)", "lost", "d", False),
]


def medians(rounds: list[dict]) -> dict:
    """Per mode, the median of every figure over the rounds (lost writes and errors: the sum)."""
    figures = {}
    for mode in MODES:
        runs = [r[mode] for r in rounds]
        figures[mode] = {key: (sum(run[key] for run in runs) if key in ("lost", "writer_errors")
                               else statistics.median(run[key] for run in runs))
                         for key in runs[0] if isinstance(runs[0][key], (int, float))}
        figures[mode]["timings"] = {phase: round(statistics.median(run["timings"].get(phase, 0) for run in runs), 3)
                                    for phase in runs[0]["timings"]}
    return figures


def print_table(size: dict, rounds: int) -> None:
    offline, online = size["medians"]["offline"], size["medians"]["online"]
    print()
    print(f"scale {size['scale']} ({size['bytes'] / 2**30:.2f} GB, {size['rows']} rows)"
          + (f", medians of {rounds} rounds" if rounds > 1 else ""))
    print(f"{'':<28}{'offline':>12}{'online':>12}{'online/offline':>16}")
    for label, key, fmt, ratio in ROWS:
        shown = f"{online[key] / offline[key]:>16.2f}" if ratio and offline[key] else ""
        print(f"{label:<28}{offline[key]:>12{fmt}}{online[key]:>12{fmt}}{shown}")
    timings = online["timings"]
    print(f"online phases s: expand {timings.get('expand', 0)} (backfill {online['backfill_rows']:.0f} rows in "
          f"{online['backfill_s']:.1f}), planning + lock wait {timings.get('lock_wait', 0)} (failed lock attempts "
          f"{online['lock_attempts']:.0f}), swap {timings.get('swap', 0)}, contract {timings.get('contract', 0)}")
    timings = offline["timings"]
    print("offline phases s: " + ", ".join(f"{phase} {seconds}" for phase, seconds in timings.items()))
    for mode in MODES:
        samples = sorted({e for r in size["rounds"] for e in r[mode]["error_samples"]})
        if samples:
            print(f"{mode} writer errors (each write retried until committed): {'; '.join(samples[:3])}")


def verdicts(sizes: list[dict]) -> list[tuple[str, bool]]:
    lines = []
    # Judged on the larger of the swap's own timing (its COMMIT included) and the hold pg_locks showed.
    for size in sizes:
        lock = max(size["medians"]["online"]["lock"], size["medians"]["online"]["lock_sampled"])
        lines.append((f"scale {size['scale']}: online exclusive lock {lock:.2f} s <= {LOCK_TARGET:g} s",
                      lock <= LOCK_TARGET))
    if len(sizes) > 1:
        # The hold itself (pg_locks): the COMMIT unlinks dropped files after releasing the locks.
        small, large = (s["medians"]["online"]["lock_sampled"] for s in (sizes[0], sizes[-1]))
        factor = sizes[-1]["scale"] / sizes[0]["scale"]
        shown = f"{large / small:.2f}" if small else "n/a"
        lines.append((f"online lock (pg_locks) not growing: scale {sizes[-1]['scale']} / scale "
                      f"{sizes[0]['scale']} = {shown} "
                      f"({large:.2f} / {small:.2f} s; linear growth would be {factor:g}), "
                      f"<= {GROWTH_RATIO:g} x + {GROWTH_NOISE:g} s", large <= GROWTH_RATIO * small + GROWTH_NOISE))
    for size in sizes:
        stall = size["medians"]["online"]["stall"]
        lines.append((f"scale {size['scale']}: writer's worst stall (online) {stall:.2f} s <= {STALL_TARGET:g} s",
                      stall <= STALL_TARGET))
    for size in sizes:
        ratio = size["medians"]["online"]["total"] / size["medians"]["offline"]["total"]
        lines.append((f"scale {size['scale']}: online total / offline total {ratio:.2f} <= {TOTAL_RATIO_TARGET:g}",
                      ratio <= TOTAL_RATIO_TARGET))
    lost = sum(size["medians"][mode]["lost"] for size in sizes for mode in MODES)
    lines.append((f"lost writes, all runs: {lost} (must be 0)", lost == 0))
    return lines


# ---------------------------------------------------------------- main

def build_template(cluster, scale: int) -> dict:
    pg.drop_database(cluster, bc.TEMPLATE)
    pg.create_database(cluster, bc.TEMPLATE)
    started = time.monotonic()
    counts = fixture.build(cluster.url(bc.TEMPLATE), scale=scale)
    conn = psycopg2.connect(cluster.url(bc.TEMPLATE))
    with conn.cursor() as cur:
        cur.execute("SELECT pg_database_size(current_database())")
        size = cur.fetchone()[0]
    plan = plan_only(conn, ConversionRequest())["plan"]
    conn.close()  # a template must have no sessions to be copied
    print(f"fixture: scale {scale}, {size / 2**30:.2f} GB, {counts['rows']} rows, {counts['foreign_keys']} FKs, "
          f"built in {time.monotonic() - started:.0f} s; the conversion covers {len(plan.tables)} tables, "
          f"{len(plan.columns)} columns", flush=True)
    return {"scale": scale, "bytes": size, "rows": counts["rows"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=1000, help="the default size (1000 is about 1.1 GB)")
    parser.add_argument("--factor", type=int, default=4, help="the second size is this times --scale")
    parser.add_argument("--rounds", type=int, default=1, help="runs of both modes per size; medians are printed")
    parser.add_argument("--baseline", type=float, default=2.0, help="seconds the writer runs before a conversion")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    args = parser.parse_args()
    if args.scale < 1 or args.factor < 2 or args.rounds < 1 or args.baseline <= 0:
        parser.error("--scale >= 1, --factor >= 2, --rounds >= 1 and --baseline > 0")

    defaults, workers = bc.role_defaults()
    module_defaults = {lever: getattr(ConversionRequest, lever) for lever in bc.LEVERS}
    print(f"module defaults: {module_defaults}, after-commit workers {RunOptions.after_commit_workers}, "
          f"lock_timeout {RunOptions.lock_timeout_ms} ms; online {ONLINE}")
    if (defaults, workers) != (module_defaults, RunOptions.after_commit_workers):
        print(f"NOTE: the role's defaults differ: {defaults}, after-commit workers {workers}")
    with open(os.path.join(bc.ROOT, "roles", "convert_keys", "defaults", "main.yml"), encoding="utf-8") as handle:
        role = yaml.safe_load(handle)
    role_online = {key: role.get(f"convert_keys_online_{key}") for key in ONLINE}
    if role_online != ONLINE:
        print(f"NOTE: the role's online defaults differ: {role_online}")
    sizes = []
    cluster = pg.create()
    try:
        for scale in (args.scale, args.scale * args.factor):
            size = build_template(cluster, scale)
            size["rounds"] = []
            for number in range(args.rounds):
                order = MODES if number % 2 == 0 else MODES[::-1]
                results = {mode: measure(cluster, mode, args.baseline) for mode in order}
                size["rounds"].append(results)
                print(f"scale {scale} round {number + 1}: " + ", ".join(
                    f"{mode} total {results[mode]['total']:.1f} s, lock {results[mode]['lock']:.2f} s, "
                    f"stall {results[mode]['stall']:.2f} s" for mode in order), flush=True)
            size["medians"] = medians(size["rounds"])
            sizes.append(size)
            pg.drop_database(cluster, bc.TEMPLATE)
    finally:
        cluster.stop(remove=True)

    for size in sizes:
        print_table(size, args.rounds)
    print()
    print("targets:")
    lines = verdicts(sizes)
    for line, met in lines:
        print(f"  {line}: {'met' if met else 'MISSED'}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"sizes": sizes, "targets": [{"target": line, "met": met} for line, met in lines],
                       "online": ONLINE},
                      handle, indent=2, default=str)
        print(f"figures written to {args.json}")
    return 0 if all(met for _, met in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
