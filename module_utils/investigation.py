"""Read-only investigation of a database whose key types drifted from the models.

Assembles, from the catalog reader alone, everything an operator needs before
deciding on a conversion: mismatched key columns and every FK referencing them,
the columns that must change together, row counts, blockers, space, sessions,
an estimated duration, and the true Alembic revision.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ansible.module_utils import key_conversion_after_commit_list as pending
from ansible.module_utils.alembic_history import true_revision
from ansible.module_utils.key_graph import fks_touching, linked_closure
from ansible.module_utils.pg_catalog import Column

# Dependents that ALTER COLUMN TYPE refuses to work around (POSTGRES_RETYPE.md §2).
BLOCKING_KINDS = {
    "view", "materialized view", "rule", "policy", "trigger", "generated column",
    "publication", "function",
}
# Rebuilt or kept by ALTER COLUMN TYPE itself, or handled as FKs.
HANDLED_KINDS = {"index", "primary key", "unique constraint", "foreign key", "default",
                 "extended statistics", "sequence"}
REFERENCE_NAME = re.compile(r"(^|_)(id|uuid)$")


def conversion_seconds(rewrite_bytes: int, tables: int, mb_per_second: float) -> int:
    """Rough duration of a conversion: each table is read, written and its indexes
    rebuilt at the given throughput, plus a little per table for locks, catalog
    work and FK re-validation (measured: well under 0.1 s for a small table)."""
    return int(rewrite_bytes / (mb_per_second * 1024 * 1024) + 0.1 * tables) + 1


def _is_blocking(dep) -> bool:
    if dep.kind in BLOCKING_KINDS:
        return True
    # A CHECK is re-parsed after the type change; a uuid literal in it breaks.
    return dep.kind == "check constraint" and "::uuid" in dep.definition


def investigate(reader, *, schemas, source_types, expected_type, keys=None,
                revisions=None, exact_count_max_bytes, long_transaction_seconds,
                disk_size_gb=None, rewrite_mb_per_second=50.0) -> dict:
    server = reader.server_version()
    database = reader.database_info()
    tables = reader.tables(schemas)
    foreign_keys = reader.foreign_keys()
    source_columns = reader.columns_of_types(source_types, schemas)
    source_set = {(c.schema, c.table, c.column) for c in source_columns}

    if keys:
        key_columns = [Column(*key.split(".", 2)) for key in keys]
        types = reader.column_types(key_columns)
        missing = [c.qualified for c in key_columns if c.qualified not in types]
        if missing:
            raise ValueError(f"key columns not found: {', '.join(missing)}")
        key_columns = [Column(c.schema, c.table, c.column, types[c.qualified]) for c in key_columns]
    else:
        key_columns = [c for c in reader.primary_key_columns(schemas)
                       if (c.schema, c.table, c.column) in source_set]
    mismatched = [c for c in key_columns if c.type != expected_type]

    closure = linked_closure([(c.schema, c.table, c.column) for c in mismatched], foreign_keys)
    linked_fks = fks_touching(closure, foreign_keys)
    closure_columns = sorted(Column(*col) for col in closure)
    closure_types = reader.column_types(closure_columns)
    to_convert = [Column(c.schema, c.table, c.column, closure_types.get(c.qualified, "?"))
                  for c in closure_columns]
    to_convert = [c for c in to_convert if c.type != expected_type]

    table_rows = row_counts(tables, exact_count_max_bytes,
                            lambda schema, table: reader.exact_row_count(schema, table, only=True))
    affected_tables = tables_to_rewrite(table_rows, {(c.schema, c.table) for c in to_convert})
    rewrite_bytes = sum(t["total_bytes"] for t in affected_tables)

    dependents = reader.column_dependents(to_convert)
    blockers = [d.as_dict() for d in dependents if _is_blocking(d)]
    blocking_relations = sorted({d["name"] for d in blockers
                                 if d["kind"] in ("view", "materialized view")})
    dependent_views = [v for v in reader.dependent_relations(blocking_relations)
                       if v["relation"] not in blocking_relations]
    unknown_dependents = [d.as_dict() for d in dependents
                          if not _is_blocking(d) and d.kind not in HANDLED_KINDS
                          and d.kind != "check constraint"]

    closure_set = {(c.schema, c.table, c.column) for c in closure_columns}
    unlinked = [c for c in source_columns if (c.schema, c.table, c.column) not in closure_set]
    looks_like_reference = [c.as_dict() for c in unlinked if REFERENCE_NAME.search(c.column)]
    other_source_columns = [c.as_dict() for c in unlinked if not REFERENCE_NAME.search(c.column)]

    sessions = reader.other_sessions(long_transaction_seconds)
    alembic = _alembic(reader, revisions, tables) if revisions else None

    disk_bytes = int(disk_size_gb * 1024 ** 3) if disk_size_gb else None
    space = {
        "affected_tables_bytes": rewrite_bytes,
        "rewrite_needs_bytes": 2 * rewrite_bytes,
        "database_bytes": database["size_bytes"],
        "disk_bytes": disk_bytes,
        "fits": None if disk_bytes is None else database["size_bytes"] + 2 * rewrite_bytes < disk_bytes,
    }
    warnings = []
    if database["superuser"]:
        warnings.append("connected as a superuser: Render grants none; tests must use the owner role")
    if space["fits"] is False:
        warnings.append("the rewrite needs more disk than the plan has free: grow the disk first")
    warnings += [f"session {s['pid']} ({s['user']}) has a transaction open for "
                 f"{s['transaction_seconds']} s: it will block the conversion's locks"
                 for s in sessions if s["long_transaction"]]
    if alembic:
        warnings += alembic["contradictions"]
        if not alembic["matches"]:
            warnings.append(f"alembic_version holds {', '.join(alembic['stored']) or 'nothing'} but the schema "
                            f"is at {alembic['true']}")

    # Index builds and FK validations an earlier conversion left after its COMMIT:
    # the conversion is not done until they are (the convert role finishes them).
    after_commit_unfinished = pending.unfinished_steps(reader.conn)
    if after_commit_unfinished:
        warnings.append(f"{after_commit_unfinished} steps an earlier conversion left for after its commit "
                        f"(index builds, FK validations) are unfinished in {pending.TABLE}: the conversion "
                        "finishes them")

    return {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conversion_needed": bool(to_convert) or bool(after_commit_unfinished),
        "after_commit_unfinished": after_commit_unfinished,
        "server_version": server,
        "database": database,
        "schemas": list(schemas),
        "source_types": list(source_types),
        "expected_key_type": expected_type,
        "mismatched_keys": [
            c.as_dict() | {"expected": expected_type, "referenced_by": _referencing(c, foreign_keys)}
            for c in mismatched
        ],
        "columns_to_convert": [c.as_dict() for c in to_convert],
        "foreign_keys": {
            "count": len(foreign_keys),
            "declared": sum(1 for fk in foreign_keys if not fk.inherited),
            "linked_to_keys": len([fk for fk in linked_fks if not fk.inherited]),
            "not_valid": [fk.name for fk in foreign_keys if not fk.validated],
            "deferrable": [fk.name for fk in foreign_keys if fk.deferrable],
            "list": [fk.as_dict() for fk in foreign_keys],
        },
        "tables": table_rows,
        "affected_tables": affected_tables,
        "blockers": blockers,
        "dependent_views": dependent_views,
        "unknown_dependents": unknown_dependents,
        "unreferenced_key_like_columns": looks_like_reference,
        "other_source_type_columns": other_source_columns,
        "functions_to_review": reader.functions_using_types(source_types, schemas),
        "space": space,
        "sessions": sessions,
        "estimate": {
            "seconds": conversion_seconds(rewrite_bytes, len(affected_tables), rewrite_mb_per_second),
            "assumed_mb_per_second": rewrite_mb_per_second,
        },
        "alembic": alembic,
        "warnings": warnings,
    }


def _referencing(key: Column, foreign_keys) -> list[dict]:
    """The declared FKs referencing a key column, as referencing table.column and name."""
    return [{"name": fk.name, "table": f"{fk.schema}.{fk.table}", "columns": list(fk.columns)}
            for fk in foreign_keys
            if (fk.ref_schema, fk.ref_table) == (key.schema, key.table)
            and key.column in fk.ref_columns and not fk.inherited]


def row_counts(tables, exact_count_max_bytes: int, count_rows) -> list[dict]:
    """Each table's rows: count_rows(schema, table) up to the size threshold,
    the planner's estimate above it. Rows live in leaf partitions only, so each
    leaf is counted once (by its own size) and a partitioned parent sums its leaves."""
    counted: dict = {}

    def count(table) -> tuple[int, bool]:
        key = (table["schema"], table["table"])
        if key not in counted:
            exact = table["total_bytes"] <= exact_count_max_bytes
            counted[key] = (count_rows(*key) if exact else table["estimated_rows"], exact)
        return counted[key]

    rows = []
    for table in tables:
        if table["partitioned"]:
            leaves = [count(leaf) for leaf in table.get("leaf_partitions") or []]
            total, exact = sum(n for n, _ in leaves), all(e for _, e in leaves)
        else:
            total, exact = count(table)
        rows.append({**table, "rows": total, "rows_exact": exact})
    return rows


def tables_to_rewrite(table_rows, affected) -> list[dict]:
    """The tables holding columns to convert, each partition's data once: a
    partitioned parent's size already holds its partitions'."""
    by_name = {(t["schema"], t["table"]): t for t in table_rows}
    chosen = [by_name.get(t, {"schema": t[0], "table": t[1], "total_bytes": 0, "rows": 0,
                              "rows_exact": False}) for t in sorted(affected)]
    covered = {(leaf["schema"], leaf["table"]) for t in chosen for leaf in t.get("leaf_partitions") or []}
    return [t for t in chosen
            if (t["schema"], t["table"]) not in covered
            and tuple(t.get("partition_root") or ()) not in affected]


def _alembic(reader, revisions, tables) -> dict:
    existing = {t["table"] for t in tables} | {f"{t['schema']}.{t['table']}" for t in tables}
    stored = reader.alembic_version()
    return true_revision(revisions, existing, stored)
