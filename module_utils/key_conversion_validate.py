"""Inside the conversion transaction, before COMMIT: what was there before
(capture) and whether everything is back as it was but the types (validate).
A difference rolls the run back."""

from __future__ import annotations

import re

from ansible.module_utils.key_conversion_sql import ident
from ansible.module_utils.pg_catalog import Column

# Defaults that generated a uuid; after the change they must still yield UUID text.
# With an empty search_path an extension's function prints schema-qualified.
UUID_DEFAULT = re.compile(r'^\(?(?:(?:"[^"]+"|\w+)\.)?(gen_random_uuid|uuid_generate_v[1-7]\w*|uuidv[47])\(\)')


def count(conn, relation: str) -> int:
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {relation}")  # regclass text: already quoted
        return cur.fetchone()[0]


def capture(reader, plan, *, count_rows: bool = True) -> dict:
    """What must be there again after the change. Without count_rows (the
    online swap, whose statements write no row) no table is read."""
    fks = reader.foreign_keys()
    columns = [Column(c["schema"], c["table"], c["column"]) for c in plan.columns]
    return {
        "fk_total": len(fks),
        "fks": {(fk.relation, fk.name): fk.definition for fk in fks if not fk.inherited},
        "counts": {t["relation"]: count(reader.conn, t["relation"]) for t in plan.tables} if count_rows else None,
        "dependents": {(d.kind, d.name, d.column) for d in reader.column_dependents(columns)},
        "acls": {v["relation"]: v["acl"] for v in plan.views},
    }


def validate(reader, plan, before) -> list[str]:
    """Differences from ``before``; rows are counted and values checked where
    capture counted rows."""
    differences = []
    deferred = {(rel, name) for rel, name in plan.deferred_validations}
    fks = reader.foreign_keys()
    after = {(fk.relation, fk.name): fk.definition for fk in fks if not fk.inherited}
    for key in sorted(set(before["fks"]) | set(after)):
        want = before["fks"].get(key)
        have = after.get(key)
        if key in deferred and have is not None:
            have = have.removesuffix(" NOT VALID")
        if want != have:
            differences.append(f"FK {key[0]}.{key[1]}: was {want!r}, now {have!r}")
    if len(fks) != before["fk_total"]:
        differences.append(f"FK count was {before['fk_total']}, now {len(fks)}")

    columns = [Column(c["schema"], c["table"], c["column"]) for c in plan.columns]
    types = reader.column_types(columns)
    details = {f"{d['schema']}.{d['table']}.{d['column']}": d for d in reader.column_details(columns)}
    for column in plan.columns:
        wanted = plan.target_type + ("[]" if column["is_array"] else "")
        if types.get(column["qualified"]) != wanted:
            differences.append(f"column {column['qualified']} is {types.get(column['qualified'])}, "
                               f"not {wanted}")
        if plan.collation and details[column["qualified"]]["collation"] != plan.collation:
            differences.append(f"column {column['qualified']} has collation "
                               f"{details[column['qualified']]['collation']}, not {plan.collation}")
    if before["counts"] is not None:
        differences += rows_and_values(reader.conn, plan, before["counts"])
    dependents = {(d.kind, d.name, d.column) for d in reader.column_dependents(columns)}
    # Indexes built after COMMIT are compared with their definitions once built.
    later = {ix["name"] for ix in plan.deferred_indexes}
    dependents |= {dep for dep in before["dependents"] if dep[0] == "index" and dep[1] in later}
    for missing in sorted(before["dependents"] - dependents):
        differences.append(f"{missing[0]} {missing[1]} on {missing[2]} was not recreated")
    # A domain's default moved onto its column is a new dependent, as planned.
    dependents -= {("default", c["column"], c["qualified"]) for c in plan.columns if c.get("default_added")}
    for extra in sorted(dependents - before["dependents"]):
        differences.append(f"{extra[0]} {extra[1]} on {extra[2]} is new")
    acls = reader.relation_acls(list(before["acls"]))
    differences += [f"grants on {rel} were {acl}, now {acls.get(rel)}"
                    for rel, acl in before["acls"].items() if acls.get(rel) != acl]
    for column in plan.columns:
        now = details[column["qualified"]]
        if now["default"] != column["default"] or now["not_null"] != column["not_null"]:
            differences.append(
                f"column {column['qualified']} default/NOT NULL changed: {column['default']!r}/"
                f"{column['not_null']} -> {now['default']!r}/{now['not_null']}")
        elif column["default"] and UUID_DEFAULT.match(column["default"]):
            with reader.conn.cursor() as cur:
                cur.execute(f"SELECT length(({column['default']})::{column['new_type']}::text)")
                length = cur.fetchone()[0]
            if length != 36:
                differences.append(f"default of {column['qualified']} yields {length} characters, not 36")
    return differences


def rows_and_values(conn, plan, counts_before) -> list[str]:
    """Row counts unchanged and, from uuid, every value in canonical UUID text
    (lower-case, hyphenated): one scan per table for both. The check is a round
    trip through uuid, exact and about four times cheaper than a regular
    expression; a value that is no UUID at all fails the cast and so the run."""
    problems = []
    # Tables whose values a CHECK verified during the rewrite need only their rows counted.
    checked_in_rewrite = set(getattr(plan, "checked_relations", []))
    for table in plan.tables:
        relation = table["relation"]
        cols = [ident(c["column"]) for c in plan.columns if c["relation"] == relation and not c["is_array"]]
        check = plan.source_type == "uuid" and cols and relation not in checked_in_rewrite
        condition = " OR ".join(f"{col}::uuid::text <> {col}" for col in cols) if check else "false"
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*), count(*) FILTER (WHERE {condition}) FROM {relation}")
            rows, bad = cur.fetchone()
        if rows != counts_before[relation]:
            problems.append(f"{relation} had {counts_before[relation]} rows, now {rows}")
        if bad:
            problems.append(f"{relation}: {bad} rows hold values that are not lower-case UUID text")
    return problems
