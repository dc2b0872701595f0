"""Which key columns are of the target type already, for the plan's "already converted".

With ``keys: [auto]`` the planner starts from the primary keys of the source type; once a run
has converted them there are none, and the plan would say "already converted: 0" about a
database it just converted. This counts the primary keys of the target type in the schemas
and every column linked to them by foreign keys that is of the target type too.
"""

from __future__ import annotations

from ansible.module_utils.key_graph import linked_closure
from ansible.module_utils.pg_catalog import Column


def of_target_type(reader, request) -> list[str]:
    """Qualified columns (auto keys only; else [] and the planner's own list stands)."""
    if request.keys != ["auto"]:
        return []
    _, target = reader.resolve_type(" ".join(request.target_type.split()))
    keys = [c for c in reader.primary_key_columns(request.schemas) if c.type == target]
    closure = linked_closure([(c.schema, c.table, c.column) for c in keys], reader.foreign_keys())
    details = reader.column_details(sorted(Column(*col) for col in closure))
    return sorted(f"{d['schema']}.{d['table']}.{d['column']}" for d in details if d["type"] == target)
