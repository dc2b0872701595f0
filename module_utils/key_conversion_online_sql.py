"""SQL text of the online conversion: the names of what the expand adds, and
the statements of its three phases. Pure functions: no connection.

Expand adds, per table, a shadow column of the target type for each column to
convert, a sync function and trigger keeping each shadow equal to its
column's value cast to the target type, and one proof check stating exactly
that (NOT VALID, then VALIDATEd once the backfill is done). The validated
check is what lets the swap SET NOT NULL without a scan and trust every
shadow value without reading a row.
"""

from __future__ import annotations

import hashlib

from ansible.module_utils.key_conversion_sql import ident, literal

SHADOW_SUFFIX = "__kc_new"
INDEX_SUFFIX = "__kc_ix"
FUNCTION_PREFIX = "key_conversion_sync_"
# Row triggers fire in name order: the sync trigger's name sorts after the
# usual ones, so a BEFORE trigger that changes a key runs before the copy.
SYNC_TRIGGER = "zzz_key_conversion_sync"
PROOF_CHECK = "key_conversion_shadow_check"
SPEC_PREFIX = "key_conversion online: "
MAX_NAME = 63


def _fit(base: str, suffix: str) -> str:
    """base + suffix within PostgreSQL's 63 bytes, a hash keeping long names distinct."""
    name = base + suffix
    if len(name.encode()) <= MAX_NAME:
        return name
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    room = MAX_NAME - len(suffix.encode()) - 9
    return base.encode()[:room].decode(errors="ignore") + "_" + digest + suffix


def shadow_column(column: str) -> str:
    return _fit(column, SHADOW_SUFFIX)


def shadow_index(index_bare_name: str) -> str:
    return _fit(index_bare_name, INDEX_SUFFIX)


def sync_function(schema: str, relation: str) -> str:
    """The sync function of ``relation``, in its schema (the table's owner creates there)."""
    digest = hashlib.sha256(relation.encode()).hexdigest()[:16]
    return f"{ident(schema)}.{ident(FUNCTION_PREFIX + digest)}"


def cast(expression: str, new_type: str) -> str:
    return f"({expression})::{new_type}"


def spec(columns: list[dict]) -> str:
    """What a sync function and proof check were made for; an earlier run's
    objects are kept only when their recorded spec is this one."""
    return SPEC_PREFIX + ", ".join(f"{c['column']}->{c['new_type']}{' NOT NULL' if c['needs_not_null'] else ''}"
                                   for c in columns)


def add_shadow_columns(relation: str, columns: list[dict], collation: str | None) -> str:
    """Catalog-only (no default, no rewrite)."""
    collate = f" COLLATE {ident(collation)}" if collation else ""
    return f"ALTER TABLE {relation} " + ", ".join(
        f"ADD COLUMN IF NOT EXISTS {ident(c['shadow'])} {c['new_type']}{collate}" for c in columns)


def create_sync_function(schema: str, relation: str, columns: list[dict]) -> str:
    body = " ".join(f"NEW.{ident(c['shadow'])} := {cast('NEW.' + ident(c['column']), c['new_type'])};"
                    for c in columns)
    return (f"CREATE OR REPLACE FUNCTION {sync_function(schema, relation)}() RETURNS trigger LANGUAGE plpgsql "
            f"SET search_path = '' AS $key_conversion$ BEGIN {body} RETURN NEW; END $key_conversion$")


def comment_sync_function(schema: str, relation: str, columns: list[dict]) -> str:
    return f"COMMENT ON FUNCTION {sync_function(schema, relation)}() IS {literal(spec(columns))}"


def create_sync_trigger(schema: str, relation: str) -> list[str]:
    # ENABLE ALWAYS: the copy is made under session_replication_role = replica too.
    return [f"CREATE TRIGGER {ident(SYNC_TRIGGER)} BEFORE INSERT OR UPDATE ON {relation} "
            f"FOR EACH ROW EXECUTE FUNCTION {sync_function(schema, relation)}()",
            f"ALTER TABLE {relation} ENABLE ALWAYS TRIGGER {ident(SYNC_TRIGGER)}"]


def drop_sync_trigger(relation: str) -> str:
    return f"DROP TRIGGER IF EXISTS {ident(SYNC_TRIGGER)} ON {relation}"


def drop_sync_function(schema: str, relation: str) -> str:
    return f"DROP FUNCTION IF EXISTS {sync_function(schema, relation)}()"


def proof_condition(columns: list[dict]) -> str:
    """Each shadow holds its column's value in the target type, byte for byte
    (C collation: a nondeterministic one could call two spellings equal)."""
    parts = []
    for c in columns:
        value = cast(ident(c["column"]), c["new_type"])
        if c["is_array"]:
            parts.append(f"{ident(c['shadow'])} IS NOT DISTINCT FROM {value}")
        else:
            parts.append(f'{ident(c["shadow"])} COLLATE "C" IS NOT DISTINCT FROM {value} COLLATE "C"')
        if c["needs_not_null"]:
            parts.append(f"{ident(c['shadow'])} IS NOT NULL")
    return " AND ".join(parts)


def add_proof_check(relation: str, columns: list[dict]) -> list[str]:
    return [f"ALTER TABLE {relation} ADD CONSTRAINT {ident(PROOF_CHECK)} CHECK ({proof_condition(columns)}) "
            "NOT VALID",
            f"COMMENT ON CONSTRAINT {ident(PROOF_CHECK)} ON {relation} IS {literal(spec(columns))}"]


def drop_proof_check(relation: str) -> str:
    return f"ALTER TABLE {relation} DROP CONSTRAINT IF EXISTS {ident(PROOF_CHECK)}"


def validate_proof_check(relation: str) -> str:
    return f"ALTER TABLE {relation} VALIDATE CONSTRAINT {ident(PROOF_CHECK)}"


def vacuum_after_backfill(relation: str) -> str:
    """The backfill left a dead version of every row and every row modified: without
    this, autovacuum and autoanalyze start on the table soon after, and each would
    hold the swap's maintenance fence (it waits a deadlock_timeout per table to have
    them cancelled; 12 s measured at 1 GB). Its statistics also cover the shadows,
    which keep them when they become the columns."""
    return f"VACUUM (ANALYZE) {relation}"


def backfill_batch(relation: str, columns: list[dict]) -> str:
    """One batch: the rows of a page range whose shadows differ (a TID range
    scan, PostgreSQL 14+). Parameters: '(first page,0)', '(page after the last,0)'."""
    sets = ", ".join(f"{ident(c['shadow'])} = {cast(ident(c['column']), c['new_type'])}" for c in columns)
    differs = " OR ".join(f"{ident(c['shadow'])} IS DISTINCT FROM {cast(ident(c['column']), c['new_type'])}"
                          for c in columns)
    return f"UPDATE {relation} SET {sets} WHERE ctid >= %s::tid AND ctid < %s::tid AND ({differs})"


def _key_list(index: dict, shadows: dict[str, str]) -> tuple[list[str], list[str]]:
    keys, include = [], []
    for position, key in enumerate(index["keys"]):
        column = ident(shadows.get(key["name"], key["name"]))
        if position >= index["key_count"]:
            include.append(column)
            continue
        option = key["option"] or 0
        descending, nulls_first = bool(option & 1), bool(option & 2)
        order = " DESC" if descending else ""
        if nulls_first != descending:
            order += " NULLS FIRST" if nulls_first else " NULLS LAST"
        keys.append(column + order)
    return keys, include


def create_shadow_index(relation: str, index: dict, shadows: dict[str, str]) -> str:
    """The index again over the shadow columns, built without blocking writes."""
    keys, include = _key_list(index, shadows)
    statement = (f"CREATE {'UNIQUE ' if index['unique'] else ''}INDEX CONCURRENTLY IF NOT EXISTS "
                 f"{ident(shadow_index(index['bare_name']))} ON {relation} USING {index['am']} ({', '.join(keys)})")
    if include:
        statement += f" INCLUDE ({', '.join(include)})"
    if index["options"]:
        statement += f" WITH ({', '.join(index['options'])})"
    if index["predicate"]:
        statement += f" WHERE {index['predicate']}"
    return statement


def drop_shadow_index(schema: str, index: dict) -> str:
    return f"DROP INDEX CONCURRENTLY IF EXISTS {schema}.{ident(shadow_index(index['bare_name']))}"


def attach_index(relation: str, schema: str, index: dict) -> list[str]:
    """In the swap: the shadow index takes the old one's place (its name, its
    constraint, its comment, replica identity and clustering)."""
    shadow = f"{schema}.{ident(shadow_index(index['bare_name']))}"
    final = f"{schema}.{ident(index['bare_name'])}"
    if index["constraint_type"] in ("p", "u"):
        kind = "PRIMARY KEY" if index["constraint_type"] == "p" else "UNIQUE"
        timing = ""
        if index["deferrable"]:
            timing = " DEFERRABLE INITIALLY " + ("DEFERRED" if index["deferred"] else "IMMEDIATE")
        statements = [f"ALTER TABLE {relation} ADD CONSTRAINT {ident(index['constraint'])} {kind} "
                      f"USING INDEX {ident(shadow_index(index['bare_name']))}{timing}"]
        if index["constraint"] != index["bare_name"]:  # USING INDEX names the index after the constraint
            statements.append(f"ALTER INDEX {schema}.{ident(index['constraint'])} "
                              f"RENAME TO {ident(index['bare_name'])}")
        if index["constraint_comment"] is not None:
            statements.append(f"COMMENT ON CONSTRAINT {ident(index['constraint'])} ON {relation} IS "
                              f"{literal(index['constraint_comment'])}")
    else:
        statements = [f"ALTER INDEX {shadow} RENAME TO {ident(index['bare_name'])}"]
    if index["comment"] is not None:
        statements.append(f"COMMENT ON INDEX {final} IS {literal(index['comment'])}")
    if index["replica_identity"]:
        statements.append(f"ALTER TABLE {relation} REPLICA IDENTITY USING INDEX {ident(index['bare_name'])}")
    if index["clustered"]:
        statements.append(f"ALTER TABLE {relation} CLUSTER ON {ident(index['bare_name'])}")
    return statements


def swap_columns(schema: str, relation: str, columns: list[dict]) -> list[str]:
    """Shadows NOT NULL where the column was (the validated proof check spares
    the scan), old columns dropped (their indexes, key constraints, checks and
    the proof check go with them), shadows renamed, defaults set again."""
    statements = [drop_sync_trigger(relation)]
    not_null = [c for c in columns if c["needs_not_null"]]
    if not_null:
        statements.append(f"ALTER TABLE {relation} " + ", ".join(
            f"ALTER COLUMN {ident(c['shadow'])} SET NOT NULL" for c in not_null))
    statements.append(f"ALTER TABLE {relation} " + ", ".join(f"DROP COLUMN {ident(c['column'])}" for c in columns))
    statements += [f"ALTER TABLE {relation} RENAME COLUMN {ident(c['shadow'])} TO {ident(c['column'])}"
                   for c in columns]
    defaults = [c for c in columns if c["default"] is not None]
    if defaults:
        statements.append(f"ALTER TABLE {relation} " + ", ".join(
            f"ALTER COLUMN {ident(c['column'])} SET DEFAULT {c['default']}" for c in defaults))
    statements.append(drop_sync_function(schema, relation))
    return statements


def add_check_not_valid(relation: str, check: dict) -> list[str]:
    statements = [f"ALTER TABLE {relation} ADD CONSTRAINT {ident(check['name'])} {check['definition']}"
                  + ("" if check["definition"].endswith(" NOT VALID") else " NOT VALID")]
    if check["comment"] is not None:
        statements.append(f"COMMENT ON CONSTRAINT {ident(check['name'])} ON {relation} IS {literal(check['comment'])}")
    return statements


def validate_check(relation: str, name: str) -> str:
    return f"ALTER TABLE {relation} VALIDATE CONSTRAINT {ident(name)}"
