"""Stored generated columns over a converted column.

PostgreSQL will not retype a column a generated column uses. The table is
rewritten anyway, so the generated column is dropped and added back with the
same expression in the same ALTER TABLE (one rewrite: ALTER TABLE runs its
drops, then the type changes, then the additions), and what was attached to it
is restored: NOT NULL and collation (in its definition), check and unique
constraints (in the same ALTER), indexes, comments, column grants, statistics
target and options (right after, in the transaction). It comes back as the
table's last column. Anything else depending on it (views, policies,
triggers, FKs, statistics objects) is refused by name.
"""

from __future__ import annotations

from ansible.module_utils.key_conversion_sql import column_attachments, ident, literal


def generated_columns(reader, keys) -> list[dict]:
    """Details of the generated columns named by (relation, column)."""
    if not keys:
        return []
    reader.qualify_output()
    with reader.conn.cursor() as cur:
        cur.execute("""
            SELECT c.oid::regclass::text, a.attname, c.oid::int, a.attnum, format_type(a.atttypid, a.atttypmod),
                   pg_get_expr(ad.adbin, ad.adrelid), ad.adbin::text, a.attgenerated, a.attnotnull,
                   CASE WHEN a.attcollation <> t.typcollation
                        THEN (SELECT quote_ident(n.nspname) || '.' || quote_ident(co.collname)
                                FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace
                               WHERE co.oid = a.attcollation) END,
                   col_description(c.oid, a.attnum), a.attstattarget, a.attoptions,
                   pg_get_userbyid(c.relowner),
                   COALESCE((SELECT json_agg(json_build_object(
                              'grantor', pg_get_userbyid(x.grantor),
                              'grantee', CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
                              'privilege', x.privilege_type, 'grantable', x.is_grantable))
                       FROM aclexplode(a.attacl) x), '[]'),
                   COALESCE((SELECT json_agg(json_build_object(
                              'name', ix.oid::regclass::text, 'definition', pg_get_indexdef(ix.oid),
                              'comment', obj_description(ix.oid, 'pg_class')) ORDER BY ix.oid)
                       FROM pg_depend d JOIN pg_class ix ON ix.oid = d.objid AND ix.relkind = 'i'
                      WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                        AND d.refobjid = c.oid AND d.refobjsubid = a.attnum
                        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = ix.oid)), '[]'),
                   COALESCE((SELECT json_agg(json_build_object(
                              'name', k.conname, 'definition', pg_get_constraintdef(k.oid),
                              'comment', obj_description(k.oid, 'pg_constraint')) ORDER BY k.conname)
                       FROM pg_depend d JOIN pg_constraint k ON k.oid = d.objid AND k.contype IN ('c', 'u')
                      WHERE d.classid = 'pg_constraint'::regclass AND d.refclassid = 'pg_class'::regclass
                        AND d.refobjid = c.oid AND d.refobjsubid = a.attnum AND k.conislocal), '[]'),
                   ARRAY(SELECT DISTINCT pg_describe_object(d.classid, d.objid, 0)
                           FROM pg_depend d
                          WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid
                            AND d.refobjsubid = a.attnum AND d.deptype IN ('n', 'a')
                            AND d.classid <> 'pg_attrdef'::regclass
                            AND NOT (d.classid = 'pg_class'::regclass AND EXISTS (
                                     SELECT 1 FROM pg_class ix WHERE ix.oid = d.objid AND ix.relkind = 'i'))
                            AND NOT (d.classid = 'pg_constraint'::regclass AND EXISTS (
                                     SELECT 1 FROM pg_constraint k WHERE k.oid = d.objid AND k.contype IN ('c', 'u')
                                        AND k.conislocal))
                          ORDER BY 1),
                   c.relkind, EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhparent = c.oid OR h.inhrelid = c.oid)
              FROM unnest(%s::text[], %s::text[]) u(r, col)
              JOIN pg_class c ON c.oid = u.r::regclass
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = u.col
              JOIN pg_type t ON t.oid = a.atttypid
              JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
             ORDER BY 1, a.attnum
            """, ([r for r, _ in keys], [c for _, c in keys]))
        rows = cur.fetchall()
    return [{"relation": rel, "column": col, "relid": relid, "attnum": attnum, "type": typ, "expression": expr,
             "tree": tree, "kind": kind, "not_null": notnull, "collation": collation, "comment": comment,
             "statistics": stats, "options": list(options or []), "owner": owner, "grants": grants,
             "indexes": _distinct(indexes), "constraints": _distinct(constraints), "unsupported": list(unsupported),
             "relkind": relkind, "inherits": inherits}
            for (rel, col, relid, attnum, typ, expr, tree, kind, notnull, collation, comment, stats, options,
                 owner, grants, indexes, constraints, unsupported, relkind, inherits) in rows]


def _distinct(items: list[dict]) -> list[dict]:
    """One entry per name (pg_depend may record a dependency more than once)."""
    return list({item["name"]: item for item in items}.values())


def refusals(column: dict) -> list[str]:
    name = f"generated column {column['column']} on {column['relation']}"
    problems = [f"{name} is used by {what}, which dropping it would drop" for what in column["unsupported"]]
    if column["kind"] != "s":
        problems.append(f"{name} is not a stored generated column")
    if column["relkind"] != "r" or column["inherits"]:
        problems.append(f"{name} is on a partitioned or inheriting table, where dropping and adding it "
                        "back would not keep each partition's own objects")
    problems += [f"{name} has a column grant made by {g['grantor']}, not by the owner {column['owner']}"
                 for g in column["grants"] if g["grantor"] != column["owner"]]
    return problems


def drop_clause(column: dict) -> str:
    return f"DROP COLUMN {ident(column['column'])}"


def add_clauses(column: dict, new_type: str | None, expression: str) -> list[str]:
    """ADD COLUMN with the same expression (retyped literals aside), then its
    constraints: in the ALTER TABLE that rewrites the table."""
    collate = f" COLLATE {column['collation']}" if column["collation"] else ""
    not_null = " NOT NULL" if column["not_null"] else ""
    clauses = [f"ADD COLUMN {ident(column['column'])} {new_type or column['type']}{collate} "
               f"GENERATED ALWAYS AS ({expression}) STORED{not_null}"]
    clauses += [f"ADD CONSTRAINT {ident(k['name'])} {k['definition']}" for k in column["constraints"]]
    return clauses


def restore_sql(column: dict, skip_indexes=()) -> list[str]:
    """What the drop took and the ALTER did not put back, in the transaction."""
    relation = column["relation"]
    statements = []
    for index in column["indexes"]:
        if index["name"] in skip_indexes:  # built after COMMIT with the other secondary indexes
            continue
        statements.append(index["definition"])
        if index["comment"] is not None:
            statements.append(f"COMMENT ON INDEX {index['name']} IS {literal(index['comment'])}")
    statements += [f"COMMENT ON CONSTRAINT {ident(k['name'])} ON {relation} IS {literal(k['comment'])}"
                   for k in column["constraints"] if k["comment"] is not None]
    return statements + column_attachments(relation, column["column"], column)


def note(column: dict) -> str:
    return (f"generated column {column['column']} on {column['relation']} is dropped and added back with the "
            "same expression in the table's rewrite (with its NOT NULL, indexes, constraints, grants, comment "
            "and statistics target): it becomes the table's last column")
