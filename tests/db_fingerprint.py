"""A database fingerprint: catalog objects and per-table content hashes.

Two fingerprints taken before and after a conversion must be equal except for
column types (reported apart), because uuid and varchar(36) print the same text.
"""

from __future__ import annotations

import psycopg2

CATALOG_QUERIES = {
    "columns": """
        SELECT c.oid::regclass::text, a.attname, a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
               col_description(c.oid, a.attnum), a.attacl::text, a.attgenerated
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
           AND c.relkind IN ('r', 'p', 'v', 'm') AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY 1, 2""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid), condeferrable,
               condeferred, convalidated, conparentid <> 0
          FROM pg_constraint WHERE connamespace NOT IN ('pg_catalog'::regnamespace,
                                                         'information_schema'::regnamespace)
         ORDER BY 1, 2""",
    "relations": """
        SELECT c.oid::regclass::text, c.relkind, pg_get_userbyid(c.relowner), c.relacl::text,
               obj_description(c.oid, 'pg_class'), c.relispopulated, c.reloptions::text,
               CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
               c.relrowsecurity
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
           AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
         ORDER BY 1""",
    "indexes": """
        SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid),
               obj_description(indexrelid, 'pg_class')
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         WHERE c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
                                      'pg_toast'::regnamespace)
         ORDER BY 1""",
    "policies": """
        SELECT polrelid::regclass::text, polname, polpermissive, polcmd, polroles::text,
               pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)
          FROM pg_policy ORDER BY 1, 2""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid), tgenabled,
               obj_description(oid, 'pg_trigger')
          FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2""",
    "rules": """
        SELECT ev_class::regclass::text, rulename, pg_get_ruledef(oid), ev_enabled
          FROM pg_rewrite WHERE rulename <> '_RETURN'
           AND ev_class NOT IN (SELECT oid FROM pg_class WHERE relnamespace = 'pg_catalog'::regnamespace)
         ORDER BY 1, 2""",
}

# Opt-in (fingerprint(url, extended=True)): objects the targeted conversion
# fixtures check besides the above, kept apart so existing comparisons stay as they were.
EXTENDED_QUERIES = {
    "publications": """
        SELECT pubname, pg_get_userbyid(pubowner), puballtables, pubinsert, pubupdate, pubdelete,
               pubtruncate, pubviaroot, obj_description(oid, 'pg_publication')
          FROM pg_publication ORDER BY 1""",
    "publication_tables": """
        SELECT p.pubname, r.prrelid::regclass::text, pg_get_expr(r.prqual, r.prrelid),
               ARRAY(SELECT a.attname FROM unnest(r.prattrs) u(num)
                       JOIN pg_attribute a ON a.attrelid = r.prrelid AND a.attnum = u.num
                      ORDER BY 1)::text
          FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid ORDER BY 1, 2""",
    "constraint_comments": """
        SELECT conrelid::regclass::text, conname, obj_description(oid, 'pg_constraint')
          FROM pg_constraint WHERE obj_description(oid, 'pg_constraint') IS NOT NULL ORDER BY 1, 2""",
    "matviews": """
        SELECT format('%I.%I', schemaname, matviewname), matviewowner, ispopulated, hasindexes
          FROM pg_matviews ORDER BY 1""",
}

TYPES_QUERY = """
    SELECT c.oid::regclass::text || '.' || a.attname, format_type(a.atttypid, a.atttypmod)
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
       AND c.relkind IN ('r', 'p', 'v', 'm') AND a.attnum > 0 AND NOT a.attisdropped"""


def fingerprint(url: str, *, extended: bool = False, column_order: bool = True) -> dict:
    """{'catalog': {...}, 'content': {table: md5}, 'types': {column: type}};
    extended adds EXTENDED_QUERIES to the catalog. Without column_order, rows
    are hashed as JSON objects (keys sorted), so a column that moved to the end
    of its table (the online conversion's) hashes the same."""
    row = "t::text" if column_order else "to_jsonb(t)::text"
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SET search_path = ''")
            catalog = {}
            queries = CATALOG_QUERIES | (EXTENDED_QUERIES if extended else {})
            for name, query in queries.items():
                cur.execute(query)
                catalog[name] = cur.fetchall()
            cur.execute("""
                SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema',
                       'pg_toast') AND (c.relkind <> 'm' OR c.relispopulated) ORDER BY 1""")
            content = {}
            for (relation,) in cur.fetchall():
                cur.execute(f"SELECT md5(coalesce(string_agg({row}, E'\\n' ORDER BY {row}), '')), "
                            f"count(*) FROM {relation} t")
                content[relation] = cur.fetchone()
            cur.execute(TYPES_QUERY)
            types = dict(cur.fetchall())
        return {"catalog": catalog, "content": content, "types": types}
    finally:
        conn.close()
