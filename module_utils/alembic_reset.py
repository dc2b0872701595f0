"""Set alembic_version to the revision the schema is really at.

Reads the stored revision and the true one (from indicator tables, see
alembic_history), then, only when they differ and the history is free of
contradictions, replaces the row in one short transaction that locks the
table and re-checks what it is replacing.
"""

from __future__ import annotations

from ansible.module_utils.alembic_history import true_revision

CREATE_TABLE = ("CREATE TABLE public.alembic_version (version_num VARCHAR(32) NOT NULL, "
                "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))")


class ResetRefused(Exception):
    """The reset would be unsafe; nothing was changed."""


def decide(reader, revisions, *, wanted: str | None = None, expected_stored: list | None = None) -> dict:
    """What the reset would do: {'stored', 'target', 'changed', 'history'}."""
    tables = reader.tables(["public"])
    existing = {t["table"] for t in tables} | {f"{t['schema']}.{t['table']}" for t in tables}
    stored = reader.alembic_version()
    history = true_revision(revisions, existing, stored)
    if history["contradictions"]:
        raise ResetRefused("the schema contradicts the Alembic history: " + "; ".join(history["contradictions"]))
    known = [w["revision"] for w in history["walk"]]
    target = wanted or history["true"]
    if target is None:
        raise ResetRefused("no revision's indicator tables all exist: the schema is not at any revision")
    if target not in known:
        raise ResetRefused(f"revision {target} is not in the app's history ({', '.join(known)})")
    if wanted and wanted != history["true"]:
        raise ResetRefused(f"revision {wanted} was asked for, but the schema is at {history['true']}")
    if expected_stored is not None and stored != expected_stored:
        raise ResetRefused(f"alembic_version holds {stored}, not the expected {expected_stored}")
    return {"stored": stored, "target": target, "changed": stored != [target], "history": history}


def apply(conn, reader, decision: dict) -> list[str]:
    """Replace the stored revision; returns the statements executed."""
    executed = []
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL")
        if not cur.fetchone()[0]:
            cur.execute(CREATE_TABLE)
            executed.append(CREATE_TABLE)
        cur.execute("LOCK TABLE public.alembic_version IN ACCESS EXCLUSIVE MODE")
        now = reader.alembic_version()
        if now != decision["stored"]:
            conn.rollback()
            raise ResetRefused(f"alembic_version changed while we worked: {decision['stored']} -> {now}")
        cur.execute("DELETE FROM public.alembic_version")
        cur.execute("INSERT INTO public.alembic_version (version_num) VALUES (%s)", (decision["target"],))
        executed += ["DELETE FROM public.alembic_version",
                     f"INSERT INTO public.alembic_version (version_num) VALUES ('{decision['target']}')"]
    conn.commit()
    return executed
