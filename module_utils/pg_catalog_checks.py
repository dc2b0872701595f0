"""The catalog reader's checks before a conversion: who holds locks, how a type
is spelled and cast, whether an expression still binds over the new types, and
which values a stricter type would refuse. Parsed and probed, never changed."""

from __future__ import annotations

from ansible.module_utils.pg_catalog_base import CatalogQueries, split_type_spelling


class ConversionCheckQueries(CatalogQueries):
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
