"""The schema fingerprint: what a backup must bring back, read from the catalog
(every schema object without oids or owners, the tables pg_dump writes rows of,
the roles policies name), and the SHA-256 over those rows that backups, their
verification and the gates compare."""

from __future__ import annotations

import hashlib
import json

from ansible.module_utils.pg_catalog_base import CatalogQueries


class FingerprintQueries(CatalogQueries):
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


def fingerprint(objects) -> str:
    """SHA-256 over the schema's (kind, name, definition) rows."""
    sha = hashlib.sha256()
    for row in sorted(tuple(r) for r in objects):
        sha.update(json.dumps(list(row), ensure_ascii=True).encode() + b"\n")
    return sha.hexdigest()


def object_counts(objects) -> dict:
    counts: dict[str, int] = {}
    for kind, _name, _definition in objects:
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def schema_difference(expected, actual, limit: int = 5) -> str:
    """A short description of how two object lists differ."""
    want = {tuple(r) for r in expected}
    have = {tuple(r) for r in actual}
    parts = [f"missing {kind} {name}" for kind, name, _ in sorted(want - have)[:limit]]
    parts += [f"extra or changed {kind} {name}" for kind, name, _ in sorted(have - want)[:limit]]
    more = len(want - have) + len(have - want) - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
