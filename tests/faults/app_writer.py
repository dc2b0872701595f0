"""The app writing throughout a conversion: a separate process that inserts users and
updates documents, one short transaction at a time, and logs each write only once its
COMMIT returned, with how long the transaction took."""

from __future__ import annotations

import json
import multiprocessing
import time
import uuid

import psycopg2


def _write(url: str, log_path: str, stop, started, deletes: bool) -> None:
    conn = psycopg2.connect(url, application_name="fault-suite app writer")
    with conn.cursor() as cur:
        cur.execute("SELECT id::text FROM organizations ORDER BY id LIMIT 1")
        organization = cur.fetchone()[0]
        cur.execute("SELECT id::text FROM documents ORDER BY id LIMIT 50")
        documents = [row[0] for row in cur.fetchall()]
    conn.commit()
    number, mine = 0, []
    with open(log_path, "a", encoding="utf-8") as log:
        while not stop.is_set():
            number += 1
            user, document, body = str(uuid.uuid4()), documents[number % len(documents)], f"write {number}"
            began = time.monotonic()
            try:
                with conn.cursor() as cur:
                    # Text parameters: valid for uuid columns before and varchar(36) after.
                    cur.execute("INSERT INTO users (id, organization_id, email, display_name) "
                                "VALUES (%s, %s, %s, %s)", (user, organization, f"{user}@writer.test", body))
                    cur.execute("UPDATE documents SET body = %s WHERE id = %s", (body, document))
                    gone = mine.pop(0) if deletes and number % 3 == 0 and mine else None
                    if gone:  # one of its own earlier users
                        cur.execute("DELETE FROM users WHERE id = %s", (gone,))
                conn.commit()
            except psycopg2.Error as exc:  # not committed: not expected afterwards
                conn.rollback()
                log.write(json.dumps({"error": str(exc).strip()[:200]}) + "\n")
                continue
            mine.append(user)
            log.write(json.dumps({"user": user, "document": document, "body": body, "deleted": gone if deletes
                                  else None, "seconds": round(time.monotonic() - began, 4), "at": time.time()}) + "\n")
            log.flush()
            if number == 20:
                started.set()
    conn.close()


class AppWriter:
    """Start; stop(); then committed (the writes seen committed), deleted (users it
    deleted, with deletes=True: every third write also deletes one of its own
    earlier users) and errors."""

    def __init__(self, url: str, log_path: str, *, deletes: bool = False):
        self.log_path = log_path
        context = multiprocessing.get_context("fork")
        self._stop, self._started = context.Event(), context.Event()
        self._process = context.Process(target=_write, args=(url, log_path, self._stop, self._started, deletes),
                                        daemon=True)
        self._process.start()
        if not self._started.wait(60):
            self.stop()
            raise AssertionError("the writer did not get going")

    def stop(self) -> None:
        self._stop.set()
        self._process.join(30)
        if self._process.is_alive():
            self._process.terminate()
        entries = []
        with open(self.log_path, encoding="utf-8") as log:
            entries = [json.loads(line) for line in log if line.strip()]
        self.committed = [e for e in entries if "user" in e]
        self.deleted = [e["deleted"] for e in self.committed if e.get("deleted")]
        self.errors = [e["error"] for e in entries if "error" in e]
