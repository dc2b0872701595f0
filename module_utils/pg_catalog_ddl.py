"""The catalog reader's DDL capture: the objects that depend on columns about to
change type, and every detail needed to drop them and recreate them exactly
(definitions, options, owners, grants, comments, indexes)."""

from __future__ import annotations

from ansible.module_utils.pg_catalog_base import RESOLVED_COLUMNS, CatalogQueries, Dependent, column_arrays


class DdlCaptureQueries(CatalogQueries):
    # -- objects that depend on columns -------------------------------------------

    def column_dependents(self, columns) -> list[Dependent]:
        """Objects recorded in pg_depend as depending on the given columns,
        classified by kind. Indexes and the FK/PK constraints themselves are
        left out: ALTER COLUMN TYPE rebuilds indexes and FKs are handled apart."""
        if not columns:
            return []
        self.qualify_output()
        rows = self._rows(
            """
            WITH target AS (
              SELECT c.oid AS relid, a.attnum, n.nspname || '.' || c.relname || '.' || a.attname AS col
                FROM """ + RESOLVED_COLUMNS + """
            )
            SELECT DISTINCT target.col,
              CASE
                WHEN d.classid = 'pg_rewrite'::regclass THEN
                  CASE WHEN rw.rulename <> '_RETURN' THEN 'rule'
                       WHEN rc.relkind = 'm' THEN 'materialized view'
                       ELSE 'view' END
                WHEN d.classid = 'pg_policy'::regclass THEN 'policy'
                WHEN d.classid = 'pg_trigger'::regclass THEN 'trigger'
                WHEN d.classid = 'pg_constraint'::regclass THEN
                  CASE co.contype WHEN 'c' THEN 'check constraint' WHEN 'f' THEN 'foreign key'
                                  WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique constraint'
                                  WHEN 'x' THEN 'exclusion constraint' ELSE 'constraint' END
                WHEN d.classid = 'pg_attrdef'::regclass AND ga.attgenerated <> '' THEN 'generated column'
                WHEN d.classid = 'pg_class'::regclass AND cl.relkind IN ('i', 'I') THEN 'index'
                WHEN d.classid = 'pg_class'::regclass AND cl.relkind = 'S' THEN 'sequence'
                WHEN d.classid = 'pg_class'::regclass AND cl.relkind = 'c' THEN 'composite type'
                WHEN d.classid = 'pg_class'::regclass THEN 'relation'
                WHEN d.classid = 'pg_attrdef'::regclass THEN 'default'
                WHEN d.classid = 'pg_proc'::regclass THEN 'function'
                WHEN d.classid = 'pg_publication_rel'::regclass THEN 'publication'
                WHEN d.classid = 'pg_statistic_ext'::regclass THEN 'extended statistics'
                ELSE pg_describe_object(d.classid, d.objid, 0)
              END AS kind,
              COALESCE(
                CASE WHEN d.classid = 'pg_rewrite'::regclass AND rw.rulename = '_RETURN'
                     THEN rw.ev_class::regclass::text END,
                rw.rulename::text, pol.polname::text, tg.tgname::text, co.conname::text,
                ga.attname::text,
                cl.oid::regclass::text, pr.oid::regprocedure::text, pub.pubname::text,
                pg_describe_object(d.classid, d.objid, d.objsubid)
              ) AS name,
              COALESCE(rw.ev_class::regclass::text, pol.polrelid::regclass::text,
                       tg.tgrelid::regclass::text, co.conrelid::regclass::text,
                       ad.adrelid::regclass::text,
                       CASE WHEN d.classid = 'pg_class'::regclass THEN d.objid::regclass::text END,
                       pubrel.prrelid::regclass::text, '') AS relation,
              COALESCE(
                CASE WHEN d.classid = 'pg_rewrite'::regclass AND rw.rulename = '_RETURN'
                     THEN pg_get_viewdef(rw.ev_class) END,
                CASE WHEN d.classid = 'pg_rewrite'::regclass THEN pg_get_ruledef(rw.oid) END,
                CASE WHEN d.classid = 'pg_policy'::regclass
                     THEN concat_ws(' ', 'USING', pg_get_expr(pol.polqual, pol.polrelid),
                                    'WITH CHECK', pg_get_expr(pol.polwithcheck, pol.polrelid)) END,
                CASE WHEN d.classid = 'pg_trigger'::regclass THEN pg_get_triggerdef(tg.oid) END,
                CASE WHEN d.classid = 'pg_constraint'::regclass THEN pg_get_constraintdef(co.oid) END,
                pg_get_expr(ad.adbin, ad.adrelid),
                ''
              ) AS definition,
              CASE WHEN d.classid = 'pg_rewrite'::regclass AND rw.rulename = '_RETURN'
                   THEN rw.ev_class ELSE d.objid END::int AS objid
              FROM target
              JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass
                              AND d.refobjid = target.relid AND d.refobjsubid = target.attnum
              LEFT JOIN pg_rewrite rw ON d.classid = 'pg_rewrite'::regclass AND rw.oid = d.objid
              LEFT JOIN pg_class rc ON rc.oid = rw.ev_class
              LEFT JOIN pg_policy pol ON d.classid = 'pg_policy'::regclass AND pol.oid = d.objid
              LEFT JOIN pg_trigger tg ON d.classid = 'pg_trigger'::regclass AND tg.oid = d.objid
              LEFT JOIN pg_constraint co ON d.classid = 'pg_constraint'::regclass AND co.oid = d.objid
              LEFT JOIN pg_class cl ON d.classid = 'pg_class'::regclass AND cl.oid = d.objid
                                   AND d.objid <> target.relid
              LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
              LEFT JOIN pg_attribute ga ON ga.attrelid = ad.adrelid AND ga.attnum = ad.adnum
              LEFT JOIN pg_proc pr ON d.classid = 'pg_proc'::regclass AND pr.oid = d.objid
              LEFT JOIN pg_publication_rel pubrel
                     ON d.classid = 'pg_publication_rel'::regclass AND pubrel.oid = d.objid
              LEFT JOIN pg_publication pub ON pub.oid = pubrel.prpubid
             WHERE d.deptype IN ('n', 'a')
               AND NOT (d.classid = 'pg_rewrite'::regclass AND rw.ev_class = target.relid
                        AND rw.rulename = '_RETURN')
            """,
            column_arrays(columns),
        )
        dependents = [Dependent(kind, name, relation, col, definition, objid)
                      for col, kind, name, relation, definition, objid in rows]
        return sorted(dependents, key=lambda d: (d.kind, d.relation, d.name, d.column))

    def dependent_relations(self, relations) -> list[dict]:
        """Views and materialized views that depend (transitively) on the given
        relations: they must be dropped and recreated together."""
        if not relations:
            return []
        self.qualify_output()
        rows = self._rows(
            """
            WITH RECURSIVE deps(oid, depth) AS (
              SELECT DISTINCT rw.ev_class, 1
                FROM pg_depend d JOIN pg_rewrite rw ON rw.oid = d.objid
               WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
                 AND d.refobjid = ANY(%s::regclass[]) AND rw.ev_class <> d.refobjid
              UNION
              SELECT rw.ev_class, deps.depth + 1
                FROM deps JOIN pg_depend d ON d.refobjid = deps.oid
                          AND d.classid = 'pg_rewrite'::regclass
                JOIN pg_rewrite rw ON rw.oid = d.objid
               WHERE rw.ev_class <> deps.oid AND deps.depth < 100
            )
            SELECT c.oid::regclass::text, c.relkind, max(depth)
              FROM deps JOIN pg_class c ON c.oid = deps.oid
             GROUP BY 1, 2 ORDER BY 3, 1
            """,
            (list(relations),),
        )
        kinds = {"v": "view", "m": "materialized view"}
        return [{"relation": rel, "kind": kinds.get(kind, kind), "depth": depth}
                for rel, kind, depth in rows]

    # -- details needed to drop and recreate dependents exactly -------------------

    def relation_details(self, relations) -> list[dict]:
        """Views and materialized views: definition, options, owner, grants,
        comments, indexes, populated state, and what would be lost silently
        if dropped (INSTEAD OF triggers, extra rules)."""
        if not relations:
            return []
        self.qualify_output()
        rows = self._rows(
            """
            SELECT c.oid::regclass::text, c.relkind, pg_get_viewdef(c.oid), c.relispopulated,
                   COALESCE(c.reloptions, '{}'), pg_get_userbyid(c.relowner), c.relacl::text,
                   obj_description(c.oid, 'pg_class'),
                   COALESCE((SELECT json_agg(json_build_object(
                              'column', a.attname, 'comment', col_description(c.oid, a.attnum),
                              'acl', a.attacl::text) ORDER BY a.attnum)
                       FROM pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attnum > 0
                        AND (col_description(c.oid, a.attnum) IS NOT NULL OR a.attacl IS NOT NULL)),
                     '[]'),
                   ARRAY(SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
                          WHERE i.indrelid = c.oid ORDER BY i.indexrelid),
                   ARRAY(SELECT i.indexrelid::regclass::text FROM pg_index i
                          WHERE i.indrelid = c.oid ORDER BY i.indexrelid),
                   ARRAY(SELECT obj_description(i.indexrelid, 'pg_class') FROM pg_index i
                          WHERE i.indrelid = c.oid ORDER BY i.indexrelid),
                   COALESCE((SELECT json_agg(json_build_object(
                              'grantor', pg_get_userbyid(x.grantor),
                              'grantee', CASE WHEN x.grantee = 0 THEN 'PUBLIC'
                                              ELSE pg_get_userbyid(x.grantee) END,
                              'privilege', x.privilege_type, 'grantable', x.is_grantable))
                       FROM aclexplode(c.relacl) x), '[]'),
                   ARRAY(SELECT tgname FROM pg_trigger WHERE tgrelid = c.oid AND NOT tgisinternal)
                   || ARRAY(SELECT rulename FROM pg_rewrite WHERE ev_class = c.oid
                             AND rulename <> '_RETURN')
                   || ARRAY(SELECT attname FROM pg_attribute a JOIN pg_attrdef ad
                              ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                             WHERE a.attrelid = c.oid),
                   (SELECT spcname FROM pg_tablespace WHERE oid = c.reltablespace),
                   pg_has_role(c.relowner, 'USAGE')
              FROM pg_class c
             WHERE c.oid = ANY(%s::regclass[])
            """,
            (list(relations),),
        )
        return [
            {"relation": rel, "kind": {"v": "view", "m": "materialized view"}.get(kind, kind),
             "definition": definition, "populated": populated, "options": list(options),
             "owner": owner, "acl": acl, "comment": comment, "column_details": columns,
             "indexes": [{"definition": d, "name": n, "comment": c}
                         for d, n, c in zip(indexes, index_names, index_comments, strict=True)],
             "grants": grants, "unsupported": list(unsupported), "tablespace": tablespace,
             "owned_by_us": ours}
            for (rel, kind, definition, populated, options, owner, acl, comment, columns, indexes,
                 index_names, index_comments, grants, unsupported, tablespace, ours) in rows
        ]

    def policy_details(self, oids) -> list[dict]:
        if not oids:
            return []
        self.qualify_output()
        rows = self._rows(
            """
            SELECT p.oid::int, p.polname, p.polrelid::regclass::text, p.polpermissive, p.polcmd,
                   ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END
                           FROM unnest(p.polroles) r ORDER BY 1),
                   pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),
                   obj_description(p.oid, 'pg_policy')
              FROM pg_policy p WHERE p.oid = ANY(%s::oid[])
             ORDER BY 3, 2
            """,
            (list(oids),),
        )
        return [
            {"oid": oid, "name": name, "relation": rel, "permissive": permissive, "command": cmd,
             "roles": list(roles), "using": using, "with_check": check, "comment": comment}
            for oid, name, rel, permissive, cmd, roles, using, check, comment in rows
        ]

    def trigger_details(self, oids) -> list[dict]:
        if not oids:
            return []
        self.qualify_output()
        rows = self._rows(
            """
            SELECT t.oid::int, t.tgname, t.tgrelid::regclass::text, pg_get_triggerdef(t.oid),
                   t.tgenabled, obj_description(t.oid, 'pg_trigger'), t.tgconstraint <> 0
              FROM pg_trigger t WHERE t.oid = ANY(%s::oid[]) ORDER BY 3, 2
            """,
            (list(oids),),
        )
        return [
            {"oid": oid, "name": name, "relation": rel, "definition": definition, "enabled": enabled,
             "comment": comment, "constraint_trigger": is_constraint}
            for oid, name, rel, definition, enabled, comment, is_constraint in rows
        ]

    def rule_details(self, oids) -> list[dict]:
        if not oids:
            return []
        self.qualify_output()
        rows = self._rows(
            """
            SELECT r.oid::int, r.rulename, r.ev_class::regclass::text, pg_get_ruledef(r.oid),
                   r.ev_enabled, obj_description(r.oid, 'pg_rewrite')
              FROM pg_rewrite r WHERE r.oid = ANY(%s::oid[]) ORDER BY 3, 2
            """,
            (list(oids),),
        )
        return [
            {"oid": oid, "name": name, "relation": rel, "definition": definition, "enabled": enabled,
             "comment": comment}
            for oid, name, rel, definition, enabled, comment in rows
        ]

    def column_details(self, columns) -> list[dict]:
        """Per column: type, default, NOT NULL, comment, grants, and its table's
        owner and kind: what a conversion must keep and may need."""
        if not columns:
            return []
        self.qualify_output()
        rows = self._rows(
            """
            SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                   pg_get_expr(ad.adbin, ad.adrelid), a.attnotnull,
                   col_description(c.oid, a.attnum), a.attacl::text, pg_get_userbyid(c.relowner),
                   pg_has_role(c.relowner, 'USAGE'), c.relkind, c.oid::regclass::text,
                   t.typcategory = 'A',
                   -- A partitioned table's data is its partitions' (it has none of its own).
                   CASE WHEN c.relkind = 'p' THEN
                     (SELECT COALESCE(sum(pg_total_relation_size(pt.relid)), 0)::bigint
                        FROM pg_partition_tree(c.oid) pt)
                   ELSE pg_total_relation_size(c.oid) END,
                   CASE WHEN c.relkind = 'p' THEN
                     (SELECT COALESCE(sum(GREATEST(l.reltuples, 0)), 0)::bigint
                        FROM pg_partition_tree(c.oid) pt JOIN pg_class l ON l.oid = pt.relid
                       WHERE pt.isleaf)
                   ELSE c.reltuples::bigint END,
                   (SELECT COALESCE(max(pg_relation_size(i.indexrelid)), 0) FROM pg_index i
                     WHERE i.indrelid = c.oid),
                   (SELECT collname FROM pg_collation WHERE oid = a.attcollation)
              FROM unnest(%s::text[], %s::text[], %s::text[]) u(s, r, col)
              JOIN pg_namespace n ON n.nspname = u.s
              JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = u.r
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = u.col AND NOT a.attisdropped
              JOIN pg_type t ON t.oid = a.atttypid
              LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
             ORDER BY 1, 2, a.attnum
            """,
            column_arrays(columns),
        )
        return [
            {"schema": s, "table": t, "column": col, "type": typ, "default": default,
             "not_null": notnull, "comment": comment, "acl": acl, "owner": owner,
             "owned_by_us": ours, "relkind": kind, "relation": rel, "is_array": is_array,
             "table_bytes": size, "estimated_rows": max(est, 0), "largest_index_bytes": largest_index,
             "collation": collation}
            for (s, t, col, typ, default, notnull, comment, acl, owner, ours, kind, rel, is_array,
                 size, est, largest_index, collation) in rows
        ]

    def table_columns(self, relations) -> dict[str, list[tuple[str, str]]]:
        """Each relation's live columns with their format_type, in order."""
        if not relations:
            return {}
        self.qualify_output()
        rows = self._rows(
            """
            SELECT a.attrelid::regclass::text, a.attname, format_type(a.atttypid, a.atttypmod)
              FROM pg_attribute a
             WHERE a.attrelid = ANY(%s::regclass[]) AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY 1, a.attnum
            """,
            (list(relations),),
        )
        result: dict = {}
        for rel, col, typ in rows:
            result.setdefault(rel, []).append((col, typ))
        return result

    def secondary_indexes(self, columns) -> list[dict]:
        """Indexes of the tables of ``columns`` (the columns about to change
        type) that CREATE INDEX CONCURRENTLY can build again after COMMIT from
        their definition: valid, not unique, backing no constraint, nothing
        depending on them, not the replica identity, not clustered, not part of
        a partitioned index, on a plain table, in the default tablespace, no
        per-column statistics target; and over the changing columns only as
        plain key columns of a btree or hash index (every key type has a default
        operator class for those) with the default operator class and no
        collation of their own, never inside an expression or predicate (whose
        meaning the new type could change, or which might not parse over it). Everything else stays inside the
        transaction, where ALTER TYPE rebuilds it and any failure rolls back."""
        if not columns:
            return []
        self.qualify_output()
        rows = self._rows(
            """
            WITH changing AS (
              SELECT c.oid AS relid, a.attnum
                FROM """ + RESOLVED_COLUMNS + """
            )
            SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, ic.relname,
                   pg_get_indexdef(i.indexrelid), obj_description(i.indexrelid, 'pg_class'),
                   pg_relation_size(i.indexrelid), i.indexprs IS NOT NULL
              FROM pg_index i
              JOIN pg_class ic ON ic.oid = i.indexrelid
              JOIN pg_class t ON t.oid = i.indrelid
             WHERE i.indrelid IN (SELECT relid FROM changing)
               AND t.relkind = 'r' AND ic.relkind = 'i'
               AND i.indisvalid AND i.indisready AND NOT i.indisunique
               AND NOT i.indisreplident AND NOT i.indisclustered AND ic.reltablespace = 0
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
               AND NOT EXISTS (SELECT 1 FROM pg_depend d
                                WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indexrelid)
               AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
               AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                                WHERE a.attrelid = i.indexrelid AND a.attstattarget >= 0)
               -- a changing column as a key column: btree or hash, its type's default
               -- operator class, the column's own collation
               AND NOT EXISTS (SELECT 1 FROM generate_subscripts(i.indclass, 1) k
                                 JOIN pg_opclass opc ON opc.oid = i.indclass[k]
                                 JOIN pg_attribute ka ON ka.attrelid = i.indrelid AND ka.attnum = i.indkey[k]
                                WHERE (i.indrelid, i.indkey[k]) IN (SELECT relid, attnum FROM changing)
                                  AND (NOT opc.opcdefault
                                       OR ic.relam NOT IN (SELECT oid FROM pg_am WHERE amname IN ('btree', 'hash'))
                                       OR i.indcollation[k] NOT IN (0, ka.attcollation)))
               -- and never inside an expression or the predicate (a Var of it in the node tree)
               AND NOT EXISTS (SELECT 1 FROM changing ch, regexp_matches(
                                   COALESCE(i.indexprs::text, '') || COALESCE(i.indpred::text, ''),
                                   ':varattno (\\d+)', 'g') m
                                WHERE ch.relid = i.indrelid AND ch.attnum = m[1]::int)
             ORDER BY 1, 2
            """,
            column_arrays(columns),
        )
        return [{"relation": rel, "name": name, "bare_name": bare, "definition": definition,
                 "comment": comment, "bytes": size, "has_expressions": expressions}
                for rel, name, bare, definition, comment, size, expressions in rows]

    def index_definitions(self, names) -> dict[str, str]:
        """{qualified index name: pg_get_indexdef} for those that exist."""
        if not names:
            return {}
        self.qualify_output()
        return dict(self._rows(
            "SELECT n, pg_get_indexdef(i.indexrelid) FROM unnest(%s::text[]) n "
            "JOIN pg_index i ON i.indexrelid = to_regclass(n)", (list(names),)))

    def relation_acls(self, relations) -> dict[str, str | None]:
        if not relations:
            return {}
        self.qualify_output()
        return dict(self._rows(
            "SELECT oid::regclass::text, relacl::text FROM pg_class WHERE oid = ANY(%s::regclass[])",
            (list(relations),)))
