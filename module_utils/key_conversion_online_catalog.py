"""What the online conversion reads from the catalog, and nothing else.

Per table of converted columns: the facts that decide whether it can be done
online (kind, inheritance, user triggers, server version), every index and
check constraint over its converted columns, what the columns carry besides
their type (comment, grants, statistics target, options), and how far an
earlier run's expand got (shadow columns, sync function and trigger, proof
check, shadow indexes). Read in the caller's transaction with an empty
search_path, so names print qualified.
"""

from __future__ import annotations

import re

from ansible.module_utils import key_conversion_online_sql as names

VARATTNO = re.compile(r":varattno (\d+)")


def _rows(conn, query: str, params=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute("SELECT set_config('search_path', '', true)")
        cur.execute(query, params)
        return cur.fetchall()


def server_version(conn) -> int:
    return int(_rows(conn, "SELECT current_setting('server_version_num')")[0][0])


def table_facts(conn, relations: list[str]) -> dict[str, dict]:
    """relation -> kind, partition/inheritance, pages, rows, block size and its
    user row triggers other than the sync trigger (name, timing, events)."""
    rows = _rows(conn, """
        SELECT c.oid::regclass::text, c.relkind, c.relispartition,
               EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhparent = c.oid OR h.inhrelid = c.oid),
               pg_relation_size(c.oid) / current_setting('block_size')::int,
               GREATEST(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid),
               COALESCE((SELECT json_agg(json_build_object(
                          'name', t.tgname, 'before', (t.tgtype & 2) <> 0, 'row', (t.tgtype & 1) <> 0,
                          'update', (t.tgtype & 16) <> 0, 'insert', (t.tgtype & 4) <> 0,
                          'enabled', t.tgenabled, 'columns', cardinality(t.tgattr::int2[]) > 0)
                          ORDER BY t.tgname)
                   FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND t.tgname <> %s), '[]')
          FROM pg_class c WHERE c.oid = ANY(%s::regclass[])
        """, (names.SYNC_TRIGGER, relations))
    return {rel: {"relkind": kind, "partition": part, "inherits": inherits, "pages": pages, "rows": rows,
                  "total_bytes": size, "triggers": triggers}
            for rel, kind, part, inherits, pages, rows, size, triggers in rows}


def indexes(conn, relation: str, columns: list[str]) -> list[dict]:
    """Every index of ``relation`` over one of ``columns`` (key, INCLUDE,
    expression or predicate), with what rebuilding it on other columns needs."""
    rows = _rows(conn, """
        WITH cols AS (SELECT a.attnum FROM pg_attribute a
                       WHERE a.attrelid = %s::regclass AND a.attname = ANY(%s::text[]))
        SELECT i.indexrelid::regclass::text, ic.relname, pg_get_indexdef(i.indexrelid), i.indisunique,
               i.indisprimary, i.indisvalid, i.indisclustered, i.indisreplident, i.indnkeyatts,
               am.amname, ic.reltablespace <> 0, ic.reloptions, i.indexprs::text, i.indpred::text,
               pg_get_expr(i.indpred, i.indrelid), obj_description(i.indexrelid, 'pg_class'),
               k.conname, k.contype, k.condeferrable, k.condeferred,
               obj_description(k.oid, 'pg_constraint'),
               ARRAY(SELECT json_build_object(
                        'attnum', i.indkey[s], 'name', a.attname, 'default_opclass', opc.opcdefault,
                        'own_collation', i.indcollation[s] NOT IN (0, COALESCE(a.attcollation, 0)),
                        'option', i.indoption[s])
                       FROM generate_subscripts(i.indkey, 1) s
                       LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[s]
                       LEFT JOIN pg_opclass opc ON opc.oid = i.indclass[s]
                      ORDER BY s),
               EXISTS (SELECT 1 FROM pg_depend d WHERE d.refclassid = 'pg_class'::regclass
                          AND d.refobjid = i.indexrelid AND d.classid = 'pg_constraint'::regclass
                          AND d.deptype = 'n'),
               ARRAY(SELECT attnum FROM cols)
          FROM pg_index i
          JOIN pg_class ic ON ic.oid = i.indexrelid
          JOIN pg_am am ON am.oid = ic.relam
          LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
                                   AND k.contype IN ('p', 'u', 'x')
         WHERE i.indrelid = %s::regclass
         ORDER BY 2
        """, (relation, columns, relation))
    found = []
    for (name, bare, definition, unique, primary, valid, clustered, replident, nkey, am, tablespace, options,
         exprs, pred_tree, predicate, comment, conname, contype, deferrable, deferred, concomment, keys,
         referenced, converted) in rows:
        converted = set(converted)
        in_trees = {int(n) for tree in (exprs, pred_tree) if tree for n in VARATTNO.findall(tree)}
        on_keys = {k["attnum"] for k in keys} & converted
        if not on_keys and not (in_trees & converted):
            continue
        found.append({
            "name": name, "bare_name": bare, "definition": definition, "unique": unique, "primary": primary,
            "valid": valid, "clustered": clustered, "replica_identity": replident, "key_count": nkey,
            "am": am, "own_tablespace": tablespace, "options": list(options or []),
            "has_expressions": exprs is not None, "predicate": predicate, "comment": comment,
            "uses_in_expression": bool(in_trees & converted), "keys": keys,
            "constraint": conname, "constraint_type": contype, "deferrable": deferrable,
            "deferred": deferred, "constraint_comment": concomment, "referenced_by_fk": referenced})
    return found


def check_constraints(conn, relation: str, columns: list[str]) -> list[dict]:
    """Check constraints of ``relation`` over one of ``columns`` (the proof
    check of this tool left out): DROP COLUMN takes them with it."""
    rows = _rows(conn, """
        SELECT k.conname, pg_get_constraintdef(k.oid), k.convalidated, k.connoinherit,
               obj_description(k.oid, 'pg_constraint')
          FROM pg_constraint k
         WHERE k.conrelid = %s::regclass AND k.contype = 'c' AND k.conname <> %s
           AND k.conkey && ARRAY(SELECT a.attnum FROM pg_attribute a
                                  WHERE a.attrelid = k.conrelid AND a.attname = ANY(%s::text[]))
         ORDER BY 1
        """, (relation, names.PROOF_CHECK, columns))
    return [{"name": n, "definition": d, "validated": v, "no_inherit": ni, "comment": c} for n, d, v, ni, c in rows]


def column_extras(conn, relation: str, columns: list[str]) -> dict[str, dict]:
    """column -> comment, grants, statistics target, options: what DROP COLUMN
    takes and the renamed shadow must get back."""
    rows = _rows(conn, """
        SELECT a.attname, col_description(a.attrelid, a.attnum), a.attstattarget, a.attoptions,
               a.attidentity <> '' OR a.attgenerated <> '',
               COALESCE((SELECT json_agg(json_build_object(
                          'grantor', pg_get_userbyid(x.grantor),
                          'grantee', CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
                          'privilege', x.privilege_type, 'grantable', x.is_grantable))
                   FROM aclexplode(a.attacl) x), '[]'),
               pg_get_userbyid(c.relowner)
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
         WHERE a.attrelid = %s::regclass AND a.attname = ANY(%s::text[]) AND NOT a.attisdropped
        """, (relation, columns))
    return {col: {"comment": comment, "statistics": stats, "options": list(options or []),
                  "identity_or_generated": special, "grants": grants, "owner": owner}
            for col, comment, stats, options, special, grants, owner in rows}


def expand_state(conn, relation: str, shadows: list[str], function: str) -> dict:
    """How far an earlier expand got on ``relation``: shadow columns (name ->
    type), the sync function's comment, the sync trigger, the proof check
    (definition comment and whether validated) and this table's shadow indexes
    (name -> valid)."""
    rows = _rows(conn, """
        SELECT
          COALESCE((SELECT json_object_agg(a.attname, format_type(a.atttypid, a.atttypmod))
                      FROM pg_attribute a WHERE a.attrelid = %(rel)s::regclass AND NOT a.attisdropped
                       AND a.attname = ANY(%(shadows)s::text[])), '{}'),
          (SELECT obj_description(p.oid, 'pg_proc') FROM pg_proc p
            WHERE p.oid = to_regprocedure(%(function)s || '()')),
          to_regprocedure(%(function)s || '()') IS NOT NULL,
          (SELECT t.tgenabled FROM pg_trigger t WHERE t.tgrelid = %(rel)s::regclass AND t.tgname = %(trigger)s),
          (SELECT json_build_object('comment', obj_description(k.oid, 'pg_constraint'),
                                    'validated', k.convalidated)
             FROM pg_constraint k WHERE k.conrelid = %(rel)s::regclass AND k.conname = %(check)s),
          COALESCE((SELECT json_object_agg(ic.relname, i.indisvalid)
                      FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                     WHERE i.indrelid = %(rel)s::regclass AND ic.relname LIKE %(suffix)s), '{}')
        """, {"rel": relation, "shadows": shadows, "function": function, "trigger": names.SYNC_TRIGGER,
              "check": names.PROOF_CHECK, "suffix": "%" + names.INDEX_SUFFIX})
    columns, function_comment, function_exists, trigger, check, shadow_indexes = rows[0]
    return {"columns": columns, "function_exists": function_exists, "function_comment": function_comment,
            "trigger": trigger, "check": check, "indexes": shadow_indexes}


def shadow_leftovers(conn, schemas: list[str]) -> list[dict]:
    """Every table of ``schemas`` carrying something an online expand made
    (for the abort): its shadow columns, sync trigger, proof check, shadow
    indexes and sync function."""
    rows = _rows(conn, """
        SELECT c.oid::regclass::text,
               ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND NOT a.attisdropped
                        AND a.attname LIKE %(column)s ORDER BY a.attnum),
               EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = %(trigger)s),
               EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.conname = %(check)s),
               ARRAY(SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                      WHERE i.indrelid = c.oid AND ic.relname LIKE %(index)s ORDER BY 1)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY(%(schemas)s::text[]) AND c.relkind IN ('r', 'p')
         ORDER BY 1
        """, {"column": "%" + names.SHADOW_SUFFIX, "trigger": names.SYNC_TRIGGER, "check": names.PROOF_CHECK,
              "index": "%" + names.INDEX_SUFFIX, "schemas": schemas})
    functions = _rows(conn, """
        SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = ANY(%s::text[]) AND p.proname LIKE %s ORDER BY 1
        """, (schemas, names.FUNCTION_PREFIX + "%"))
    tables = [{"relation": rel, "columns": cols, "trigger": trig, "check": check, "indexes": ixs}
              for rel, cols, trig, check, ixs in rows if cols or trig or check or ixs]
    return tables + [{"function": f} for (f,) in functions]


def signature(conn, relations: list[str]) -> str:
    """A digest of the catalog rows that describe ``relations`` and what hangs
    on them (columns, constraints either side, indexes, triggers, policies,
    rules, dependents), by row version: equal digests, same schema. The swap
    plans before it locks and, under the lock, only checks this (ANALYZE and
    VACUUM update pg_class in place and leave it as it is)."""
    return _rows(conn, """
        WITH rels AS (SELECT unnest(%s::regclass[])::oid AS oid)
        SELECT md5(string_agg(item, ',' ORDER BY item)) FROM (
          SELECT 'c' || oid || ':' || xmin FROM pg_class WHERE oid IN (SELECT oid FROM rels)
          UNION ALL SELECT 'a' || attrelid || '.' || attnum || ':' || xmin FROM pg_attribute
                     WHERE attrelid IN (SELECT oid FROM rels)
          UNION ALL SELECT 'k' || oid || ':' || xmin FROM pg_constraint
                     WHERE conrelid IN (SELECT oid FROM rels) OR confrelid IN (SELECT oid FROM rels)
          UNION ALL SELECT 'i' || indexrelid || ':' || xmin FROM pg_index WHERE indrelid IN (SELECT oid FROM rels)
          UNION ALL SELECT 't' || oid || ':' || xmin FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM rels)
          UNION ALL SELECT 'p' || oid || ':' || xmin FROM pg_policy WHERE polrelid IN (SELECT oid FROM rels)
          UNION ALL SELECT 'r' || oid || ':' || xmin FROM pg_rewrite WHERE ev_class IN (SELECT oid FROM rels)
          UNION ALL SELECT 'd' || classid || '.' || objid || '.' || objsubid || '>' || refobjid || '.' || refobjsubid
                      FROM pg_depend WHERE refclassid = 'pg_class'::regclass AND refobjid IN (SELECT oid FROM rels)
        ) s(item)
        """, (relations,))[0][0]
