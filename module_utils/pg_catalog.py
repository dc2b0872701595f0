"""The one PostgreSQL catalog reader: what the database holds, read-only.

Every role and module that needs to know about key columns, foreign keys, or
objects depending on columns asks this reader, so investigation, planning and
verification all see the database the same way. Queries run in the caller's
transaction; the reader never writes.

Relation names are returned schema-qualified and quoted exactly as
``regclass::text`` prints them with an empty search_path.

The queries live in one module per concern, joined here into one reader:
pg_catalog_investigation.py (server, tables, keys, foreign keys, sessions,
Alembic), pg_catalog_ddl.py (dependents and the details to recreate them),
pg_catalog_checks.py (locks, types, probes before a conversion) and
pg_catalog_fingerprint.py (what a backup must bring back); what they share is
pg_catalog_base.py.
"""

from __future__ import annotations

from ansible.module_utils.pg_catalog_base import (
    DEFAULT_SCHEMAS,
    Column,
    Dependent,
    ForeignKey,
    split_type_spelling,
)
from ansible.module_utils.pg_catalog_checks import ConversionCheckQueries
from ansible.module_utils.pg_catalog_ddl import DdlCaptureQueries
from ansible.module_utils.pg_catalog_fingerprint import FingerprintQueries
from ansible.module_utils.pg_catalog_investigation import InvestigationQueries

# The reader's objects, importable from here as from the reader itself.
__all__ = ["DEFAULT_SCHEMAS", "CatalogReader", "Column", "Dependent", "ForeignKey", "split_type_spelling"]


class CatalogReader(InvestigationQueries, DdlCaptureQueries, ConversionCheckQueries, FingerprintQueries):
    """Every catalog query, on one connection: CatalogReader(conn).foreign_keys() and so on."""
