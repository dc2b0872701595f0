"""The one PostgreSQL catalog reader: what the database holds, read-only.

Every role and module that needs to know about key columns, foreign keys, or
objects depending on columns asks this reader, so investigation, planning and
verification all see the database the same way. Queries run in the caller's
transaction; the reader never writes.

Relation names are returned schema-qualified and quoted exactly as
``regclass::text`` prints them with an empty search_path.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

DEFAULT_SCHEMAS = ("public",)
# A type as an operator writes it: words (maybe schema-qualified), an optional
# numeric modifier, an optional []. Anything else (quotes, semicolons, casts)
# is refused, since the spelling is written into ALTER TABLE ... TYPE.
TYPE_SPELLING = re.compile(
    r"^(?P<base>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?(?: [A-Za-z_][A-Za-z0-9_]*)*)"
    r" ?(?P<modifier>\( ?[0-9]+ ?(?:, ?[0-9]+ ?)?\))?(?P<array>\[\])?$")


# The Columns passed as column_arrays(...) joined to their catalog rows (n, c, a).
RESOLVED_COLUMNS = """unnest(%s::text[], %s::text[], %s::text[]) t(s, r, a_name)
                JOIN pg_namespace n ON n.nspname = t.s
                JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.r
                JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = t.a_name"""


def column_arrays(columns) -> tuple[list[str], list[str], list[str]]:
    """Query parameters for a list of Columns: schemas, tables, column names."""
    return [c.schema for c in columns], [c.table for c in columns], [c.column for c in columns]


def split_type_spelling(type_sql: str) -> tuple[str, str, bool]:
    """('character varying', '(36)', False) for 'character varying(36)'; ValueError
    for anything that is not a plain type spelling."""
    text = " ".join(type_sql.split())
    match = TYPE_SPELLING.match(text)
    if not match:
        raise ValueError(f"type {type_sql!r} is not a plain type name such as varchar(36), uuid or text[]")
    modifier = (match["modifier"] or "").replace(" ", "")
    return match["base"], modifier, bool(match["array"])


@dataclass(frozen=True, order=True)
class Column:
    schema: str
    table: str
    column: str
    type: str = field(compare=False, default="")
    attnum: int = field(compare=False, default=0)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}.{self.column}"

    def as_dict(self) -> dict:
        return asdict(self) | {"qualified": self.qualified}


@dataclass(frozen=True)
class ForeignKey:
    name: str
    schema: str
    table: str
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]
    definition: str
    deferrable: bool
    deferred: bool
    validated: bool
    inherited: bool  # a partition's copy of a parent's FK (conparentid <> 0)
    relation: str  # conrelid::regclass, quoted and qualified
    ref_relation: str = ""  # confrelid::regclass, quoted and qualified

    def as_dict(self) -> dict:
        return asdict(self) | {"columns": list(self.columns), "ref_columns": list(self.ref_columns)}


@dataclass(frozen=True)
class Dependent:
    """An object that depends on a column and so blocks ALTER COLUMN TYPE."""

    kind: str  # view, materialized view, rule, policy, trigger, generated column, ...
    name: str
    relation: str
    column: str  # the qualified column it depends on
    definition: str = ""
    objid: int = 0  # the dependent's oid in its catalog, for detail lookups

    def as_dict(self) -> dict:
        return asdict(self)


class CatalogReader:
    def __init__(self, conn):
        self.conn = conn

    def _rows(self, query: str, params=None) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def _execute(self, query: str, params=None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(query, params)

    def qualify_output(self) -> None:
        """Make regclass and pg_get_*def print schema-qualified names in this transaction."""
        self._rows("SELECT set_config('search_path', '', true)")

    # -- server and database ------------------------------------------------

    def server_version(self) -> dict:
        (num, text), = self._rows(
            "SELECT current_setting('server_version_num')::int, current_setting('server_version')")
        return {"num": num, "text": text, "major": num // 10000}

    def database_info(self) -> dict:
        (name, size, user, superuser), = self._rows(
            "SELECT current_database(), pg_database_size(current_database()), current_user, "
            "rolsuper FROM pg_roles WHERE rolname = current_user")
        return {"name": name, "size_bytes": size, "user": user, "superuser": superuser}

    def tables(self, schemas=DEFAULT_SCHEMAS) -> list[dict]:
        """Ordinary and partitioned tables with their sizes and row estimates.

        A partitioned table has no storage of its own (pg_total_relation_size
        is 0): its size and estimate are its leaf partitions' sums, and
        ``leaf_partitions`` lists them so their rows are counted once, per leaf.
        A partition names its ``partition_root``."""
        rows = self._rows(
            """
            SELECT n.nspname, c.relname, c.relkind, c.relispartition,
                   CASE WHEN c.relkind = 'p' THEN
                     (SELECT COALESCE(sum(pg_total_relation_size(t.relid)), 0)
                        FROM pg_partition_tree(c.oid) t)::bigint
                   ELSE pg_total_relation_size(c.oid) END,
                   CASE WHEN c.relkind = 'p' THEN
                     (SELECT COALESCE(sum(GREATEST(l.reltuples, 0)), 0)
                        FROM pg_partition_tree(c.oid) t JOIN pg_class l ON l.oid = t.relid
                       WHERE t.isleaf)::bigint
                   ELSE GREATEST(c.reltuples, 0)::bigint END,
                   CASE WHEN c.relkind = 'p' THEN
                     (SELECT COALESCE(json_agg(json_build_object(
                                'schema', ln.nspname, 'table', l.relname,
                                'total_bytes', pg_total_relation_size(l.oid),
                                'estimated_rows', GREATEST(l.reltuples, 0)::bigint)
                              ORDER BY ln.nspname, l.relname), '[]')
                        FROM pg_partition_tree(c.oid) t JOIN pg_class l ON l.oid = t.relid
                        JOIN pg_namespace ln ON ln.oid = l.relnamespace
                       WHERE t.isleaf)
                   END,
                   CASE WHEN c.relispartition THEN
                     (SELECT json_build_array(rn.nspname, r.relname)
                        FROM pg_class r JOIN pg_namespace rn ON rn.oid = r.relnamespace
                       WHERE r.oid = pg_partition_root(c.oid))
                   END
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)
             ORDER BY 1, 2
            """,
            (list(schemas),),
        )
        return [
            {"schema": s, "table": t, "partitioned": k == "p", "estimated_rows": est,
             "total_bytes": size, "is_partition": part, "leaf_partitions": leaves,
             "partition_root": list(root) if root else None}
            for s, t, k, part, size, est, leaves, root in rows
        ]

    def exact_row_count(self, schema: str, table: str, *, only: bool = False) -> int:
        """count(*) of a table; with only=True, without rows of inheritance children."""
        from psycopg2 import sql

        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT count(*) FROM {}{}.{}").format(
                sql.SQL("ONLY " if only else ""), sql.Identifier(schema), sql.Identifier(table)))
            return cur.fetchone()[0]

    # -- columns and keys ---------------------------------------------------

    def columns_of_types(self, type_names, schemas=DEFAULT_SCHEMAS) -> list[Column]:
        """Table columns whose base type is one of type_names (arrays excluded)."""
        rows = self._rows(
            """
            SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnum
              FROM pg_attribute a
              JOIN pg_class c ON c.oid = a.attrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_type t ON t.oid = a.atttypid
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND a.attnum > 0 AND NOT a.attisdropped
               AND t.typname = ANY(%s) AND n.nspname = ANY(%s)
             ORDER BY 1, 2, a.attnum
            """,
            (list(type_names), list(schemas)),
        )
        return [Column(*row) for row in rows]

    def primary_key_columns(self, schemas=DEFAULT_SCHEMAS) -> list[Column]:
        rows = self._rows(
            """
            SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnum
              FROM pg_constraint k
              JOIN pg_class c ON c.oid = k.conrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY(k.conkey)
             WHERE k.contype = 'p' AND k.conparentid = 0 AND NOT c.relispartition
               AND n.nspname = ANY(%s)
             ORDER BY 1, 2, a.attnum
            """,
            (list(schemas),),
        )
        return [Column(*row) for row in rows]

    def column_types(self, columns) -> dict[str, str]:
        """Current format_type of each given column, keyed by qualified name."""
        if not columns:
            return {}
        rows = self._rows(
            """
            SELECT n.nspname || '.' || c.relname || '.' || a.attname,
                   format_type(a.atttypid, a.atttypmod)
              FROM pg_attribute a
              JOIN pg_class c ON c.oid = a.attrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE (n.nspname, c.relname, a.attname) IN
                   (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))
               AND NOT a.attisdropped
            """,
            column_arrays(columns),
        )
        return dict(rows)

    # -- foreign keys -------------------------------------------------------

    def foreign_keys(self) -> list[ForeignKey]:
        """Every FK in the database, definitions as pg_get_constraintdef prints
        them with an empty search_path (fully qualified, exactly recreatable)."""
        self.qualify_output()
        rows = self._rows(
            """
            SELECT k.conname, n.nspname, c.relname,
                   ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(num, i)
                           JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num
                          ORDER BY u.i)::text[],
                   fn.nspname, fc.relname,
                   ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(num, i)
                           JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num
                          ORDER BY u.i)::text[],
                   pg_get_constraintdef(k.oid), k.condeferrable, k.condeferred, k.convalidated,
                   k.conparentid <> 0, k.conrelid::regclass::text, k.confrelid::regclass::text
              FROM pg_constraint k
              JOIN pg_class c ON c.oid = k.conrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_class fc ON fc.oid = k.confrelid
              JOIN pg_namespace fn ON fn.oid = fc.relnamespace
             WHERE k.contype = 'f'
             ORDER BY n.nspname, c.relname, k.conname
            """
        )
        return [
            ForeignKey(name, schema, table, tuple(cols), rschema, rtable, tuple(rcols), definition,
                       deferrable, deferred, validated, inherited, relation, ref_relation)
            for (name, schema, table, cols, rschema, rtable, rcols, definition, deferrable, deferred,
                 validated, inherited, relation, ref_relation) in rows
        ]

    # -- objects that depend on columns -------------------------------------

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

    def functions_using_types(self, type_names, schemas=DEFAULT_SCHEMAS) -> list[dict]:
        """Functions whose signature or body mentions one of the types: they are
        not tracked by pg_depend (except BEGIN ATOMIC bodies) and need review."""
        self.qualify_output()
        rows = self._rows(
            """
            SELECT p.oid::regprocedure::text, l.lanname,
                   pg_get_function_result(p.oid),
                   EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[] || p.prorettype) t(oid)
                             JOIN pg_type ty ON ty.oid = t.oid
                            WHERE ty.typname = ANY(%s)
                               OR ty.typelem IN (SELECT oid FROM pg_type WHERE typname = ANY(%s)))
                     AS in_signature,
                   p.prosrc ~* ('\\m(' || array_to_string(%s::text[], '|') || ')\\M') AS in_body
              FROM pg_proc p
              JOIN pg_namespace n ON n.oid = p.pronamespace
              JOIN pg_language l ON l.oid = p.prolang
             WHERE n.nspname = ANY(%s)
             ORDER BY 1
            """,
            (list(type_names), list(type_names), list(type_names), list(schemas)),
        )
        return [
            {"function": name, "language": lang, "returns": result,
             "in_signature": sig, "in_body": body}
            for name, lang, result, sig, body in rows if sig or body
        ]

    # -- sessions -----------------------------------------------------------

    def other_sessions(self, long_seconds: int) -> list[dict]:
        rows = self._rows(
            """
            SELECT pid, usename, application_name, state,
                   EXTRACT(EPOCH FROM now() - xact_start)::int,
                   left(regexp_replace(query, '\\s+', ' ', 'g'), 200)
              FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND backend_type = 'client backend'
             ORDER BY xact_start NULLS LAST
            """
        )
        return [
            {"pid": pid, "user": user, "application": app, "state": state,
             "transaction_seconds": secs, "long_transaction": secs is not None and secs >= long_seconds,
             "query": query if query is not None else "<hidden: another role's session>"}
            for pid, user, app, state, secs, query in rows
        ]

    # -- alembic ------------------------------------------------------------

    def alembic_version(self, table: str = "alembic_version") -> list[str]:
        """Revision ids stored by Alembic, [] when its table does not exist."""
        (exists,), = self._rows("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",))
        if not exists:
            return []
        from psycopg2 import sql

        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT version_num FROM public.{} ORDER BY 1").format(
                sql.Identifier(table)))
            return [row[0] for row in cur.fetchall()]

    # -- details needed to drop and recreate dependents exactly -------------

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

    def lock_holders(self, relations) -> list[dict]:
        """Other sessions holding or awaiting locks on the relations: who blocks us."""
        if not relations:
            return []
        rows = self._rows(
            """
            SELECT DISTINCT l.pid, l.mode, l.relation::regclass::text, a.usename, a.state,
                   left(regexp_replace(a.query, '\\s+', ' ', 'g'), 200)
              FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.relation = ANY(%s::regclass[]) AND l.pid <> pg_backend_pid()
             ORDER BY 1
            """,
            (list(relations),),
        )
        return [{"pid": pid, "mode": mode, "relation": rel, "user": user, "state": state,
                 "query": query if query is not None else "<hidden>"}
                for pid, mode, rel, user, state, query in rows]

    def uuid_output_is_builtin(self, target_sql: str) -> bool:
        """Whether uuid -> target_sql goes through uuid's built-in output
        function (uuid_out, canonical lower-case text): no pg_cast entry
        overrides it and uuid's output function is uuid_out."""
        base, _, _ = split_type_spelling(target_sql)
        (builtin,), = self._rows(
            """
            SELECT (SELECT typoutput = 'uuid_out'::regproc FROM pg_type WHERE oid = 'uuid'::regtype)
               AND NOT EXISTS (SELECT 1 FROM pg_cast
                                WHERE castsource = 'uuid'::regtype AND casttarget = %s::regtype)
            """, (base,))
        return builtin

    def resolve_type(self, type_sql: str) -> tuple[str, str]:
        """(pg_type.typname, format_type text) of a type written in SQL, e.g.
        'varchar(36)' -> ('varchar', 'character varying(36)'). Parsed, not created."""
        base, modifier, array = split_type_spelling(type_sql)
        self._execute("SAVEPOINT resolve_type")
        try:
            (typname, formatted), = self._rows(
                "SELECT typname, format_type(oid, NULL) FROM pg_type WHERE oid = %s::regtype", (base,))
        except Exception as exc:  # psycopg2.Error, kept generic so the reader imports nothing
            self._execute("ROLLBACK TO SAVEPOINT resolve_type")
            raise ValueError(f"unknown type {type_sql!r}: {str(exc).splitlines()[0]}") from None
        self._execute("RELEASE SAVEPOINT resolve_type")
        if modifier:
            formatted += modifier
        return typname, formatted + ("[]" if array else "")

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

    def trigger_functions_mentioning(self, relation: str, column: str) -> list[str]:
        """Triggers on a table whose function body names the column: they may
        keep writing the old type into a column left unconverted."""
        self.qualify_output()
        rows = self._rows(
            """
            SELECT t.tgname || ' -> ' || p.oid::regprocedure::text
              FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
             WHERE t.tgrelid = %s::regclass AND NOT t.tgisinternal
               AND p.prosrc ~ ('\\m' || %s || '\\M')
             ORDER BY 1
            """,
            (relation, column),
        )
        return [row[0] for row in rows]

    def probe_expression(self, columns: list[tuple[str, str]], alias: str, expression: str) -> str | None:
        """Type-check an expression over a table's columns given as (name, type),
        without touching the table: None if it parses and binds, else the error."""
        from psycopg2 import sql

        row = sql.SQL(", ").join(
            sql.SQL("NULL::{} AS {}").format(sql.SQL(typ), sql.Identifier(col)) for col, typ in columns)
        query = sql.SQL("SELECT 1 FROM (SELECT {}) AS {} WHERE ({}) LIMIT 0").format(
            row, sql.Identifier(alias), sql.SQL(expression))
        self._execute("SAVEPOINT probe_expression")
        try:
            self._rows(query)
        except Exception as exc:  # any parse or bind error is the answer
            self._execute("ROLLBACK TO SAVEPOINT probe_expression")
            return str(exc).splitlines()[0]
        self._execute("RELEASE SAVEPOINT probe_expression")
        return None

    def values_not_matching(self, relation: str, column: str, pattern: str, limit: int = 5) -> list[str]:
        """Up to ``limit`` rows (by ctid and value) whose column does not match
        the pattern: what a cast to a stricter type would choke on."""
        from psycopg2 import sql

        with self.conn.cursor() as cur:
            cur.execute(
                sql.SQL("SELECT ctid::text, {col}::text FROM {rel} WHERE {col} IS NOT NULL "
                        "AND {col}::text !~ %s LIMIT %s").format(
                    col=sql.Identifier(column), rel=sql.SQL(relation)),
                (pattern, limit))
            return [f"row {ctid}: {value!r}" for ctid, value in cur.fetchall()]

    # -- what a backup must bring back (module_utils/pg_backup*.py) ---------

    def user_schemas(self) -> list[str]:
        """Every schema a pg_dump of the database covers (system schemas left out)."""
        return [row[0] for row in self._rows(
            """
            SELECT nspname FROM pg_namespace
             WHERE nspname NOT IN ('information_schema', 'pg_catalog', 'pg_toast')
               AND nspname !~ '^pg_(temp|toast_temp)_'
             ORDER BY 1
            """)]

    def schema_objects(self, schemas) -> list[tuple[str, str, str]]:
        """(kind, name, definition) of every schema, relation, column, constraint,
        index, trigger, policy, function, enum/domain type and extension, without
        oids or owners, so a restored copy (--no-owner --no-privileges) prints
        the same rows. Objects belonging to an extension are left out."""
        self.qualify_output()
        rows = self._rows(
            """
            WITH ns AS (SELECT oid, nspname FROM pg_namespace WHERE nspname = ANY(%s)),
            rel AS (
              SELECT c.oid, c.relkind FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'i', 'I')
                 AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                    AND d.objid = c.oid AND d.deptype = 'e')
                 -- pg_dump leaves out an index an interrupted CREATE INDEX CONCURRENTLY left invalid
                 AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indexrelid = c.oid AND c.relkind = 'i'
                                    AND NOT (i.indisvalid AND i.indisready))
            )
            SELECT 'schema', nspname::text, '' FROM ns
            UNION ALL
            SELECT CASE relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                                WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                                WHEN 'f' THEN 'foreign table' ELSE 'index' END,
                   rel.oid::regclass::text,
                   CASE WHEN relkind IN ('v', 'm') THEN pg_get_viewdef(rel.oid)
                        WHEN relkind IN ('i', 'I') THEN pg_get_indexdef(rel.oid)
                        WHEN relkind = 'p' THEN 'partitioned ' || pg_get_partkeydef(rel.oid)
                        ELSE COALESCE((SELECT 'partition ' || pg_get_expr(c.relpartbound, c.oid)
                                         FROM pg_class c WHERE c.oid = rel.oid AND c.relispartition),
                                      '') END
              FROM rel
            UNION ALL
            SELECT 'column', a.attrelid::regclass::text || '.' || quote_ident(a.attname),
                   concat_ws(' ', format_type(a.atttypid, a.atttypmod),
                             CASE WHEN a.attnotnull THEN 'NOT NULL' END,
                             CASE WHEN a.attgenerated <> '' THEN 'GENERATED' END,
                             CASE WHEN a.attidentity <> '' THEN 'IDENTITY ' || a.attidentity::text END,
                             'DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid))
              FROM pg_attribute a JOIN rel ON rel.oid = a.attrelid AND rel.relkind NOT IN ('S', 'i', 'I')
              LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
             WHERE a.attnum > 0 AND NOT a.attisdropped
            UNION ALL
            SELECT 'constraint', k.conrelid::regclass::text || '.' || quote_ident(k.conname),
                   pg_get_constraintdef(k.oid)
              FROM pg_constraint k JOIN rel ON rel.oid = k.conrelid
            UNION ALL
            SELECT 'trigger', t.tgrelid::regclass::text || '.' || quote_ident(t.tgname),
                   pg_get_triggerdef(t.oid)
              FROM pg_trigger t JOIN rel ON rel.oid = t.tgrelid WHERE NOT t.tgisinternal
            UNION ALL
            SELECT 'policy', p.polrelid::regclass::text || '.' || quote_ident(p.polname),
                   concat_ws(' ', p.polcmd::text, CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                             'TO', ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END
                                           FROM unnest(p.polroles) r ORDER BY 1)::text,
                             'USING', pg_get_expr(p.polqual, p.polrelid),
                             'WITH CHECK', pg_get_expr(p.polwithcheck, p.polrelid))
              FROM pg_policy p JOIN rel ON rel.oid = p.polrelid
            UNION ALL
            SELECT 'function', p.oid::regprocedure::text,
                   concat_ws(' ', pg_get_function_result(p.oid), l.lanname, md5(p.prosrc))
              FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
             WHERE NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                                  AND d.objid = p.oid AND d.deptype = 'e')
            UNION ALL
            SELECT 'type', t.oid::regtype::text,
                   CASE t.typtype
                     WHEN 'e' THEN 'enum ' || ARRAY(SELECT enumlabel FROM pg_enum
                                                     WHERE enumtypid = t.oid ORDER BY enumsortorder)::text
                     ELSE 'domain ' || format_type(t.typbasetype, t.typtypmod) END
              FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
             WHERE t.typtype IN ('e', 'd')
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                                  AND d.objid = t.oid AND d.deptype = 'e')
            UNION ALL
            SELECT 'extension', quote_ident(e.extname), '' FROM pg_extension e
             WHERE e.extname <> 'plpgsql'
            """,
            (list(schemas),),
        )
        return sorted(rows)

    def policy_roles(self, schemas) -> list[str]:
        """Roles named in row-level security policies: a restore elsewhere needs them to exist."""
        return [row[0] for row in self._rows(
            """
            SELECT DISTINCT pg_get_userbyid(r)
              FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace, unnest(p.polroles) r
             WHERE r <> 0 AND n.nspname = ANY(%s)
             ORDER BY 1
            """,
            (list(schemas),))]

    def dumped_tables(self, schemas) -> list[tuple[str, str, str]]:
        """(schema, table, regclass text) of every table whose rows pg_dump writes:
        ordinary tables and partitions, not partitioned parents or foreign tables."""
        self.qualify_output()
        return self._rows(
            """
            SELECT n.nspname, c.relname, c.oid::regclass::text
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r' AND n.nspname = ANY(%s)
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                  AND d.objid = c.oid AND d.deptype = 'e')
             ORDER BY 3
            """,
            (list(schemas),))

    def heap_bytes(self, schemas) -> int:
        """Table data size without indexes: an upper bound of what pg_dump writes uncompressed."""
        (size,), = self._rows(
            """
            SELECT COALESCE(sum(pg_table_size(c.oid)), 0)::bigint
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'm') AND n.nspname = ANY(%s)
            """,
            (list(schemas),))
        return size
