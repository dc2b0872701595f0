"""The catalog reader's investigation queries: the server, tables and their sizes,
key columns and their types, every foreign key, functions naming a type,
other sessions, and Alembic's stored revision."""

from __future__ import annotations

from ansible.module_utils.pg_catalog_base import (
    DEFAULT_SCHEMAS,
    CatalogQueries,
    Column,
    ForeignKey,
    column_arrays,
)


class InvestigationQueries(CatalogQueries):
    # -- server and database ------------------------------------------------------

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

    # -- columns and keys ---------------------------------------------------------

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

    # -- foreign keys -------------------------------------------------------------

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

    # -- functions naming a type --------------------------------------------------

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

    # -- sessions -----------------------------------------------------------------

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

    # -- alembic ------------------------------------------------------------------

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
