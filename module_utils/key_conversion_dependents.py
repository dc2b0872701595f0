"""Catalog reads for the dependents a conversion re-parses: their stored parse
trees (pg_node_tree) next to the text PostgreSQL prints for them, and the
column numbers those trees refer to. Read-only, in the caller's transaction,
with the empty search_path the reader sets (names print qualified)."""

from __future__ import annotations


def _rows(reader, query: str, params=None) -> list[tuple]:
    reader.qualify_output()
    with reader.conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


def type_oid(reader, type_name: str) -> int:
    (oid,), = _rows(reader, "SELECT oid::int FROM pg_type WHERE typname = %s "
                            "ORDER BY typnamespace = 'pg_catalog'::regnamespace DESC LIMIT 1", (type_name,))
    return oid


def equality_operators(reader, source_oid: int) -> set[int]:
    """The type's own = and <> operators."""
    return {oid for (oid,) in _rows(
        reader, "SELECT oid::int FROM pg_operator WHERE oprname IN ('=', '<>') AND oprleft = %s "
                "AND oprright = %s", (source_oid, source_oid))}


def column_numbers(reader, columns) -> dict:
    """{(relation oid, attnum): 'relation.column'} for (relation, column) pairs."""
    if not columns:
        return {}
    rows = _rows(reader, """
        SELECT a.attrelid::int, a.attnum, a.attrelid::regclass::text || '.' || quote_ident(a.attname)
          FROM unnest(%s::text[], %s::text[]) u(r, c)
          JOIN pg_attribute a ON a.attrelid = u.r::regclass AND a.attname = u.c AND NOT a.attisdropped
        """, ([r for r, _ in columns], [c for _, c in columns]))
    return {(relid, attnum): name for relid, attnum, name in rows}


def view_trees(reader, relations) -> dict:
    """{view: (oid, ev_action)}."""
    if not relations:
        return {}
    rows = _rows(reader, """
        SELECT r.ev_class::regclass::text, r.ev_class::int, r.ev_action::text FROM pg_rewrite r
         WHERE r.ev_class = ANY(%s::regclass[]) AND r.rulename = '_RETURN'""", (list(relations),))
    return {rel: (oid, tree) for rel, oid, tree in rows}


def object_trees(reader, kind: str, oids) -> dict:
    """{oid: (table oid, [trees])} of policies, triggers or rules."""
    if not oids:
        return {}
    query = {
        "policy": "SELECT oid::int, polrelid::int, ARRAY[polqual::text, polwithcheck::text] FROM pg_policy",
        "trigger": "SELECT oid::int, tgrelid::int, ARRAY[tgqual::text] FROM pg_trigger",
        "rule": "SELECT oid::int, ev_class::int, ARRAY[ev_qual::text, ev_action::text] FROM pg_rewrite",
    }[kind]
    rows = _rows(reader, query + " WHERE oid = ANY(%s::oid[])", (list(oids),))
    return {oid: (relid, list(trees)) for oid, relid, trees in rows}


def check_constraints(reader, keys) -> list[dict]:
    """Check constraints named by (relation, name): tree, definition, comment."""
    if not keys:
        return []
    rows = _rows(reader, """
        SELECT k.conrelid::regclass::text, k.conname, k.conrelid::int, k.conbin::text,
               pg_get_constraintdef(k.oid), obj_description(k.oid, 'pg_constraint'), k.conislocal
          FROM unnest(%s::text[], %s::text[]) u(r, n)
          JOIN pg_constraint k ON k.conrelid = u.r::regclass AND k.conname = u.n AND k.contype = 'c'
         ORDER BY 1, 2""", ([r for r, _ in keys], [n for _, n in keys]))
    return [{"relation": rel, "name": name, "relid": relid, "tree": tree, "definition": definition,
             "comment": comment, "local": local}
            for rel, name, relid, tree, definition, comment, local in rows]


def expression_indexes(reader, relids) -> list[dict]:
    """Indexes of the tables with an expression or a predicate, and what
    recreating one by its definition would not bring back."""
    if not relids:
        return []
    rows = _rows(reader, """
        SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text, i.indrelid::int,
               pg_get_indexdef(i.indexrelid), ARRAY[i.indexprs::text, i.indpred::text],
               obj_description(i.indexrelid, 'pg_class'),
               array_remove(ARRAY[
                 CASE WHEN EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
                      THEN 'backs a constraint' END,
                 CASE WHEN t.relkind = 'p' OR ic.relispartition THEN 'is partitioned' END,
                 CASE WHEN i.indisclustered THEN 'is the clustered index' END,
                 CASE WHEN i.indisreplident THEN 'is the replica identity' END,
                 CASE WHEN ic.reltablespace <> 0 THEN 'is in its own tablespace' END,
                 CASE WHEN EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indexrelid
                                      AND a.attstattarget >= 0) THEN 'has a statistics target' END], NULL)
          FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
         WHERE i.indrelid = ANY(%s::oid[]) AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)
         ORDER BY 1""", (list(relids),))
    return [{"name": name, "relation": rel, "relid": relid, "definition": definition, "trees": list(trees),
             "comment": comment, "unsupported": list(unsupported)}
            for name, rel, relid, definition, trees, comment, unsupported in rows]


def unconverted_writers(reader, converted_relations, unconverted) -> list[str]:
    """Functions whose body names a converted table (or that a trigger on one
    runs) and also an unconverted source-type column (its name, and its
    table's name unless the trigger is on that table): after the change they
    would copy the new type's values into the old type's column. Bodies are
    not in pg_depend: this reads their text, and names them for review."""
    if not converted_relations or not unconverted:
        return []
    names = _rows(reader, "SELECT c.oid::int, c.relname FROM pg_class c WHERE c.oid = ANY(%s::regclass[])",
                  (list(converted_relations),))
    rows = _rows(reader, """
        WITH converted AS (SELECT * FROM unnest(%s::oid[], %s::text[]) u(oid, pattern)),
        leftover AS (SELECT c.oid, u.cp, u.tp, c.oid::regclass::text || '.' || quote_ident(u.c) AS col
                       FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) u(r, c, cp, tp)
                       JOIN pg_class c ON c.oid = u.r::regclass),
        funcs AS (
          SELECT p.oid, p.prosrc, NULL::oid AS trigrel, NULL::text AS trig FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           JOIN pg_language l ON l.oid = p.prolang
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND l.lanname NOT IN ('c', 'internal')
          UNION ALL
          SELECT p.oid, p.prosrc, t.tgrelid, t.tgname || ' on ' || t.tgrelid::regclass::text
            FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
           WHERE NOT t.tgisinternal AND t.tgrelid IN (SELECT oid FROM converted))
        SELECT DISTINCT
               CASE WHEN f.trig IS NULL THEN 'function ' ELSE 'trigger ' || f.trig || ' running function ' END
               || f.oid::regprocedure::text || ' names ' || lo.col
          FROM funcs f JOIN leftover lo
            ON f.prosrc ~* lo.cp AND (f.trigrel = lo.oid OR f.prosrc ~* lo.tp)
         WHERE f.trigrel IS NOT NULL OR EXISTS (SELECT 1 FROM converted c WHERE f.prosrc ~* c.pattern)
         ORDER BY 1""",
        ([oid for oid, _ in names], [_word(name) for _, name in names],
         [r for r, _ in unconverted], [c for _, c in unconverted],
         [_word(c) for _, c in unconverted], [_word(r.rsplit(".", 1)[-1].strip('"')) for r, _ in unconverted]))
    return [row[0] for row in rows]


def _word(name: str) -> str:
    """A regular expression matching the name as a whole word (ARE syntax)."""
    return "\\m" + "".join(ch if ch.isalnum() or ch == "_" else "\\" + ch for ch in name) + "\\M"


def domains_over(reader, source_fmt: str) -> dict:
    """{domain as format_type prints it: details} of domains directly over the
    source type: their columns convert like the source type's own."""
    rows = _rows(reader, """
        SELECT format_type(t.oid, NULL), t.oid::int, t.typnotnull, pg_get_expr(t.typdefaultbin, 0),
               ARRAY(SELECT k.conname || ' ' || pg_get_constraintdef(k.oid) FROM pg_constraint k
                      WHERE k.contypid = t.oid ORDER BY 1)
          FROM pg_type t WHERE t.typtype = 'd' AND format_type(t.typbasetype, t.typtypmod) = %s
        """, (source_fmt,))
    return {name: {"name": name, "oid": oid, "not_null": notnull, "default": default, "checks": list(checks)}
            for name, oid, notnull, default, checks in rows}


def domain_columns(reader, domain_oids, schemas):
    """Table columns (Columns) of the given domains in the schemas."""
    from ansible.module_utils.pg_catalog import Column

    if not domain_oids:
        return []
    rows = _rows(reader, """
        SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnum
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped
           AND a.atttypid = ANY(%s::oid[]) AND n.nspname = ANY(%s)
         ORDER BY 1, 2, a.attnum""", (list(domain_oids), list(schemas)))
    return [Column(*row) for row in rows]


def domain_users(reader, domain_oids) -> dict:
    """{domain oid: [qualified columns of any relation still of that domain]}."""
    if not domain_oids:
        return {}
    rows = _rows(reader, """
        SELECT a.atttypid::int, n.nspname || '.' || c.relname || '.' || a.attname
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE a.atttypid = ANY(%s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
         ORDER BY 2""", (list(domain_oids),))
    users: dict = {}
    for oid, column in rows:
        users.setdefault(oid, []).append(column)
    return users


def from_domain(column: dict, domain: dict, notes: list[str]) -> None:
    """A column of a domain over the source type becomes the plain target type:
    the domain's NOT NULL and default move onto the column (the same ALTER
    TABLE); its CHECK constraints, written for the source type, do not."""
    column["domain"] = domain["name"]
    column["set_not_null"] = domain["not_null"] and not column["not_null"]
    column["set_default"] = domain["default"] if column["default"] is None else None
    column["default_added"] = column["set_default"] is not None
    column["not_null"] = column["not_null"] or domain["not_null"]
    column["default"] = column["default"] if column["default"] is not None else domain["default"]
    if domain["checks"]:
        notes.append(f"column {column['qualified']} is of domain {domain['name']}, whose checks "
                     f"({'; '.join(domain['checks'])}) stop applying to it: it becomes plain {column['new_type']}")


def unused_domains(reader, columns: list[dict], domains: dict) -> list[str]:
    used = {domains[d["domain"]]["oid"]: d["domain"] for d in columns if d.get("domain")}
    still = domain_users(reader, list(used))
    converted = {d["qualified"] for d in columns}
    return [f"domain {name} is no longer used by any column after the change; it is kept, not dropped"
            for oid, name in sorted(used.items()) if not set(still.get(oid, [])) - converted]
