"""What every part of the catalog reader shares: the objects it returns (Column,
ForeignKey, Dependent), how a type may be spelled, and running a query in the
caller's transaction. The reader itself is pg_catalog.CatalogReader.

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


class CatalogQueries:
    """Runs read-only queries in the caller's transaction; the parts of CatalogReader extend it."""

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
