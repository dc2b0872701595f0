"""SQL text for a key-type conversion: drop and recreate statements built from
captured catalog details. Pure functions: no connection, easy to test.

Identifiers we write are always double-quoted; relation names come from
``regclass::text`` with an empty search_path, so they are already qualified
and quoted as needed. Definitions come from pg_get_*def, so recreation is
exactly what the server printed.
"""

from __future__ import annotations

import re

POLICY_COMMANDS = {"*": "ALL", "r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE"}
TRIGGER_STATES = {"D": "DISABLE TRIGGER", "R": "ENABLE REPLICA TRIGGER", "A": "ENABLE ALWAYS TRIGGER"}
RULE_STATES = {"D": "DISABLE RULE", "R": "ENABLE REPLICA RULE", "A": "ENABLE ALWAYS RULE"}


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str | None) -> str:
    """A SQL string literal (standard_conforming_strings is on since 9.1)."""
    if text is None:
        return "NULL"
    return "'" + text.replace("'", "''") + "'"


VALUE_CHECK = "key_conversion_value_check"
# 36 characters, hyphens where canonical UUID text has them.
UUID_SHAPE = "'________-____-____-____-____________'"


def alter_columns(relation: str, columns: list[tuple[str, str]], collation: str | None = None,
                  checked: list[str] | None = None, value_check: str = "round_trip",
                  before: list[str] | None = None, after: list[str] | None = None) -> str:
    """One ALTER TABLE carrying every column change of a table: one rewrite.

    ``checked`` columns get a temporary CHECK on each value: ``round_trip``,
    canonical UUID text (cast to uuid and back, unchanged); ``shape``, 36
    bytes with the four hyphens in place. PostgreSQL evaluates a constraint
    added by the rewriting ALTER while it rewrites, so the check costs no scan
    of its own; drop it right after (``drop_value_check``). ``before`` and
    ``after`` are further clauses (drops; additions) of the same statement:
    PostgreSQL runs drops, then type changes, then additions."""
    collate = f" COLLATE {ident(collation)}" if collation else ""
    changes = list(before or [])
    changes += [f"ALTER COLUMN {ident(col)} TYPE {new_type}{collate} USING {ident(col)}::{new_type}"
                for col, new_type in columns]
    changes += list(after or [])
    if checked:
        condition = " AND ".join((f"{ident(col)}::uuid::text = {ident(col)}" if value_check == "round_trip"
                                  # bytewise: LIKE refuses a nondeterministic collation of the column
                                  else f"(octet_length({ident(col)}) = 36 AND {ident(col)} COLLATE \"C\" LIKE "
                                       f"{UUID_SHAPE})")
                                 for col in checked)
        changes.append(f"ADD CONSTRAINT {ident(VALUE_CHECK)} CHECK ({condition})")
    return f"ALTER TABLE {relation} " + ", ".join(changes)


def column_attachments(relation: str, column: str, attrs: dict) -> list[str]:
    """What a column carries besides its type and that a new column of the same
    name must get again: column grants, comment, statistics target, options
    (``attrs``: grants [{grantee, privilege, grantable}], comment, statistics, options)."""
    col = ident(column)
    statements = []
    for grant in attrs["grants"]:
        grantee = "PUBLIC" if grant["grantee"] == "PUBLIC" else ident(grant["grantee"])
        option = " WITH GRANT OPTION" if grant["grantable"] else ""
        statements.append(f"GRANT {grant['privilege']} ({col}) ON TABLE {relation} TO {grantee}{option}")
    if attrs["comment"] is not None:
        statements.append(f"COMMENT ON COLUMN {relation}.{col} IS {literal(attrs['comment'])}")
    if attrs["statistics"] is not None and attrs["statistics"] >= 0:
        statements.append(f"ALTER TABLE {relation} ALTER COLUMN {col} SET STATISTICS {attrs['statistics']}")
    if attrs["options"]:
        statements.append(f"ALTER TABLE {relation} ALTER COLUMN {col} SET ({', '.join(attrs['options'])})")
    return statements


def drop_value_check(relation: str) -> str:
    return f"ALTER TABLE {relation} DROP CONSTRAINT {ident(VALUE_CHECK)}"


def check_expression(definition: str) -> str:
    """The boolean expression of a check constraint as pg_get_constraintdef
    prints it: 'CHECK ((a > 0)) NOT VALID' -> '(a > 0)'."""
    text = definition.strip()
    for suffix in (" NOT VALID", " NO INHERIT"):
        text = text.removesuffix(suffix)
    if not text.startswith("CHECK (") or not text.endswith(")"):
        raise ValueError(f"not a check constraint definition: {definition}")
    return text[len("CHECK ("):-1]


def drop_foreign_keys(relation: str, names: list[str]) -> str:
    return f"ALTER TABLE {relation} " + ", ".join(f"DROP CONSTRAINT {ident(n)}" for n in names)


def add_foreign_keys(relation: str, fks: list[tuple[str, str]]) -> str:
    """fks: (name, definition as pg_get_constraintdef printed it, maybe + NOT VALID)."""
    return f"ALTER TABLE {relation} " + ", ".join(f"ADD CONSTRAINT {ident(n)} {d}" for n, d in fks)


def with_not_valid(definition: str) -> str:
    return definition if definition.endswith("NOT VALID") else definition + " NOT VALID"


def validate_foreign_key(relation: str, name: str) -> str:
    return f"ALTER TABLE {relation} VALIDATE CONSTRAINT {ident(name)}"


# -- secondary indexes built after COMMIT ------------------------------------

CONCURRENT_INDEX = re.compile(r'^CREATE INDEX CONCURRENTLY IF NOT EXISTS ("(?:[^"]|"")+") ON ')


def _after_index_name(definition: str) -> str:
    """What follows the index name in 'CREATE INDEX <name> ON ...', the name
    printed by quote_identifier: bare, or double-quoted with "" inside."""
    prefix = "CREATE INDEX "
    if not definition.startswith(prefix):
        raise ValueError(f"not a plain CREATE INDEX: {definition}")
    rest = definition[len(prefix):]
    if rest.startswith('"'):
        end = 1
        while True:
            end = rest.index('"', end)
            if rest[end + 1:end + 2] != '"':
                return rest[end + 1:]
            end += 2
    return rest[rest.index(" "):]


def create_index_concurrently(definition: str, bare_name: str) -> str:
    """pg_get_indexdef's statement, built without blocking writes and skipped
    when the index is there (a re-run after a crash)."""
    return f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {ident(bare_name)}{_after_index_name(definition)}"


def concurrent_index_name(statement: str) -> str | None:
    """The bare index name of a create_index_concurrently statement, else None."""
    match = CONCURRENT_INDEX.match(statement)
    return match.group(1)[1:-1].replace('""', '"') if match else None


def drop_index(name: str, *, concurrently: bool = False) -> str:
    return f"DROP INDEX {'CONCURRENTLY ' if concurrently else ''}{name}"


def comment_on_index(name: str, comment: str) -> str:
    return f"COMMENT ON INDEX {name} IS {literal(comment)}"


# -- views and materialized views -------------------------------------------

def drop_view(view: dict) -> str:
    kind = "MATERIALIZED VIEW" if view["kind"] == "materialized view" else "VIEW"
    return f"DROP {kind} {view['relation']}"


def create_view(view: dict, current_user: str) -> list[str]:
    body = view["definition"].strip().rstrip(";")
    options = f" WITH ({', '.join(view['options'])})" if view["options"] else ""
    if view["kind"] == "materialized view":
        space = f" TABLESPACE {ident(view['tablespace'])}" if view.get("tablespace") else ""
        data = "WITH DATA" if view["populated"] else "WITH NO DATA"
        statements = [f"CREATE MATERIALIZED VIEW {view['relation']}{options}{space} AS\n{body}\n{data}"]
        kind = "MATERIALIZED VIEW"
    else:
        statements = [f"CREATE VIEW {view['relation']}{options} AS\n{body}"]
        kind = "VIEW"
    for index in view["indexes"]:
        statements.append(index["definition"])
        if index["comment"] is not None:
            statements.append(f"COMMENT ON INDEX {index['name']} IS {literal(index['comment'])}")
    if view["owner"] != current_user:
        statements.append(f"ALTER {kind} {view['relation']} OWNER TO {ident(view['owner'])}")
    statements += grants(f"TABLE {view['relation']}", view["owner"], view["acl"], view["grants"])
    if view["comment"] is not None:
        statements.append(f"COMMENT ON {kind} {view['relation']} IS {literal(view['comment'])}")
    for column in view["column_details"]:
        if column["comment"] is not None:
            statements.append(f"COMMENT ON COLUMN {view['relation']}.{ident(column['column'])} "
                              f"IS {literal(column['comment'])}")
    return statements


def grants(target: str, owner: str, acl: str | None, entries: list[dict]) -> list[str]:
    """Statements that rebuild an ACL exactly. NULL acl means the defaults, which
    a new object has already; otherwise start from nothing and grant each item
    in the original order (aclitem order follows first grant)."""
    if acl is None:
        return []
    statements = [f"REVOKE ALL ON {target} FROM {ident(owner)}"]
    for entry in entries:
        grantee = "PUBLIC" if entry["grantee"] == "PUBLIC" else ident(entry["grantee"])
        option = " WITH GRANT OPTION" if entry["grantable"] else ""
        statements.append(f"GRANT {entry['privilege']} ON {target} TO {grantee}{option}")
    return statements


# -- policies, triggers, rules ----------------------------------------------

def drop_policy(policy: dict) -> str:
    return f"DROP POLICY {ident(policy['name'])} ON {policy['relation']}"


def create_policy(policy: dict) -> list[str]:
    parts = [f"CREATE POLICY {ident(policy['name'])} ON {policy['relation']}",
             f"AS {'PERMISSIVE' if policy['permissive'] else 'RESTRICTIVE'}",
             f"FOR {POLICY_COMMANDS[policy['command']]}",
             f"TO {', '.join(policy['roles'])}"]
    if policy["using"] is not None:
        parts.append(f"USING ({policy['using']})")
    if policy["with_check"] is not None:
        parts.append(f"WITH CHECK ({policy['with_check']})")
    statements = [" ".join(parts)]
    if policy["comment"] is not None:
        statements.append(f"COMMENT ON POLICY {ident(policy['name'])} ON {policy['relation']} "
                          f"IS {literal(policy['comment'])}")
    return statements


def drop_trigger(trigger: dict) -> str:
    return f"DROP TRIGGER {ident(trigger['name'])} ON {trigger['relation']}"


def create_trigger(trigger: dict) -> list[str]:
    statements = [trigger["definition"]]
    if trigger["enabled"] in TRIGGER_STATES:
        statements.append(f"ALTER TABLE {trigger['relation']} {TRIGGER_STATES[trigger['enabled']]} "
                          f"{ident(trigger['name'])}")
    if trigger["comment"] is not None:
        statements.append(f"COMMENT ON TRIGGER {ident(trigger['name'])} ON {trigger['relation']} "
                          f"IS {literal(trigger['comment'])}")
    return statements


def drop_rule(rule: dict) -> str:
    return f"DROP RULE {ident(rule['name'])} ON {rule['relation']}"


def create_rule(rule: dict) -> list[str]:
    statements = [rule["definition"].strip().rstrip(";")]
    if rule["enabled"] in RULE_STATES:
        statements.append(f"ALTER TABLE {rule['relation']} {RULE_STATES[rule['enabled']]} "
                          f"{ident(rule['name'])}")
    if rule["comment"] is not None:
        statements.append(f"COMMENT ON RULE {ident(rule['name'])} ON {rule['relation']} "
                          f"IS {literal(rule['comment'])}")
    return statements
