"""Benchmark the online key conversion against the offline one, with the app writing throughout.

    .venv/bin/python bench/bench_online.py [--scale 1000] [--factor 4] [--rounds 1] [--json PATH]
    .venv/bin/python bench/bench_online.py --scale 1 --factor 4     # a quick check of the bench itself

Builds bench_convert's production-shaped broken fixture at --scale (1000 is about
1.1 GB) and at --factor times that, each once on one throwaway cluster, and at
each size converts two identical copies of it (CREATE DATABASE ... TEMPLATE):

  offline  convert() with the module's defaults (ConversionRequest(), RunOptions())
  online   convert_online() with the module's defaults: batches of 5000 rows, no
           pause, no rewrite allowed inside the swap

A writer process (its own connection, as the app) inserts a user and updates a
document in one short transaction after another, from before the conversion
starts to after it ends. Printed side by side for each size, offline | online |
online/offline: total seconds, the longest exclusive-lock hold (the conversion's
own timing: offline its one transaction, online the swap), the writer's worst
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
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_convert as bc  # its import sets up sys.path and ansible.module_utils for us

import psycopg2  # noqa: E402
from ansible.module_utils.key_conversion_online_run import convert_online  # noqa: E402
from ansible.module_utils.key_conversion_plan import ConversionRequest  # noqa: E402
from ansible.module_utils.key_conversion_run import RunOptions, plan_only  # noqa: E402

from demoapp import fixture  # noqa: E402
from localenv import cluster as pg  # noqa: E402

# pg_convert_keys' defaults for mode=online (online_batch_rows, online_batch_pause, online_allow_rewrite).
ONLINE_BATCH_ROWS, ONLINE_PAUSE, ONLINE_ALLOW_REWRITE = 5000, 0.0, False
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
        while not committed and not (errors and stop.is_set()):
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
        with open(self.log_path, encoding="utf-8") as log:
            logged = json.load(log)
        return logged["writes"], logged["errors"]
