"""Which columns must change type together.

A foreign key's columns and the key columns it references must have the same
type, so converting a key means converting every column linked to it through
FK edges, transitively, in any schema: the closure of the FK graph.
"""

from __future__ import annotations


def fk_column_pairs(fk) -> list[tuple[tuple[str, str, str], tuple[str, str, str]]]:
    """(referencing column, referenced column) pairs of one FK."""
    return [
        ((fk.schema, fk.table, col), (fk.ref_schema, fk.ref_table, ref))
        for col, ref in zip(fk.columns, fk.ref_columns, strict=True)
    ]


def linked_closure(start, foreign_keys) -> set[tuple[str, str, str]]:
    """Every (schema, table, column) reachable from ``start`` over FK edges,
    in either direction. Partition copies of FKs are skipped: their parent
    constraint already links the same columns."""
    edges: dict = {}
    for fk in foreign_keys:
        if fk.inherited:
            continue
        for left, right in fk_column_pairs(fk):
            edges.setdefault(left, set()).add(right)
            edges.setdefault(right, set()).add(left)
    seen = set()
    todo = [tuple(col) for col in start]
    while todo:
        col = todo.pop()
        if col in seen:
            continue
        seen.add(col)
        todo.extend(edges.get(col, set()) - seen)
    return seen


def fks_touching(columns, foreign_keys) -> list:
    """FKs with at least one column (either side) in ``columns``."""
    wanted = set(columns)
    return [
        fk for fk in foreign_keys
        if any(left in wanted or right in wanted for left, right in fk_column_pairs(fk))
    ]
