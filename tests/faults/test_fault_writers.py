"""Writers: the app inserts users and updates documents throughout a conversion run by
convert.yml. Every write the app saw committed is there afterwards, with its value; the
longest stall the app saw is recorded beside the conversion's exclusive-lock time."""

from __future__ import annotations

import json
import time

import psycopg2

from tests.faults.app_writer import AppWriter
from tests.faults.test_fault_kills import convert_vars
from tests.playbook_runner import run_playbook


def test_every_write_seen_committed_survives_the_conversion(broken_db, tmp_path, figures):
    writer = AppWriter(broken_db, str(tmp_path / "writes.jsonl"))
    try:
        started = time.time()
        result = run_playbook("playbooks/convert.yml", convert_vars(broken_db, tmp_path / "reports", "writers"),
                              tmp_dir=str(tmp_path))
        ended = time.time()
        time.sleep(0.5)  # a few writes after the run as well
    finally:
        writer.stop()
    assert result.rc == 0, result.output[-3000:]
    committed = writer.committed
    during = [w for w in committed if started <= w["at"] <= ended]
    assert during, "the writer committed nothing while the conversion ran"

    last_body = {w["document"]: w["body"] for w in committed}
    with psycopg2.connect(broken_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = 'users'::regclass AND attname = 'id'")
        assert cur.fetchone()[0] == "character varying(36)"
        cur.execute("SELECT id FROM users WHERE email LIKE '%%@writer.test'")
        present = {row[0] for row in cur.fetchall()}
        cur.execute("SELECT id, body FROM documents WHERE id = ANY(%s)", (list(last_body),))
        bodies = dict(cur.fetchall())
    lost = [w["user"] for w in committed if w["user"] not in present]
    assert lost == [], f"{len(lost)} of {len(committed)} committed inserts are missing"
    assert bodies == last_body, "a committed update is missing"

    report = json.loads(next((tmp_path / "reports").glob("*/writers/conversion.json")).read_text())
    stall = max(w["seconds"] for w in committed)
    figures.record("Writers during a conversion (convert.yml)", writes_committed=len(committed),
                   writes_during_the_run=len(during), writes_lost=len(lost), updates_lost=0,
                   writer_errors=len(writer.errors), writer_error_samples=sorted(set(writer.errors))[:3],
                   max_longest_stall_s=round(stall, 2),
                   max_exclusive_lock_s=report["timings"]["exclusive_lock"])
