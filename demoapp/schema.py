"""The application's schema as data, emitted as DDL with a chosen key type.

users, organizations and documents are the keyed tables: production was
hand-built with ``uuid`` for their ids (and so for every column referencing
them, or PostgreSQL would refuse the FK), while the models say varchar(36).
Every other table has varchar(36) ids, as the models say.

KEY marks a column of the keyed tables' key type; ID one of varchar(36).
"""

from __future__ import annotations

from dataclasses import dataclass, field

KEY = "{key}"
ID = "varchar(36)"
KEYED_TABLES = ("organizations", "users", "documents")


@dataclass
class FK:
    columns: tuple[str, ...]
    table: str
    ref_columns: tuple[str, ...] = ("id",)
    on_delete: str = ""
    deferrable: str = ""  # "", "DEFERRABLE", "DEFERRABLE INITIALLY DEFERRED"
    name: str = ""

    def sql(self, table: str) -> str:
        name = self.name or f"{table}_{'_'.join(self.columns)}_fkey"
        clause = (f'CONSTRAINT "{name}" FOREIGN KEY ({", ".join(self.columns)}) '
                  f'REFERENCES {self.table} ({", ".join(self.ref_columns)})')
        if self.on_delete:
            clause += f" ON DELETE {self.on_delete}"
        if self.deferrable:
            clause += f" {self.deferrable}"
        return clause


@dataclass
class Table:
    name: str
    columns: list[tuple[str, str]]  # (name, type and modifiers)
    fks: list[FK] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # table constraints besides FKs
    primary_key: tuple[str, ...] = ("id",)


def _satellite(name: str, parents: list[tuple[str, str, str]], *, payload: str = "name text") -> Table:
    """A table hanging off others: parents are (column, referenced table, on delete)."""
    columns = [("id", f"{ID} NOT NULL")]
    fks = []
    for column, table, on_delete in parents:
        kind = KEY if table in KEYED_TABLES else ID
        columns.append((column, kind))
        fks.append(FK((column,), table, on_delete=on_delete))
    columns += [tuple(part.split(" ", 1)) for part in payload.split(", ")]
    columns.append(("created_at", "timestamptz NOT NULL DEFAULT now()"))
    return Table(name, columns, fks)


ORG = ("organization_id", "organizations", "CASCADE")
USER = ("user_id", "users", "CASCADE")
CREATOR = ("created_by_id", "users", "SET NULL")
DOC = ("document_id", "documents", "CASCADE")

TABLES: list[Table] = [
    Table("organizations", [
        ("id", f"{KEY} NOT NULL"), ("name", "text NOT NULL"), ("slug", "text NOT NULL"),
        ("owner_id", KEY), ("created_at", "timestamptz NOT NULL DEFAULT now()")],
        [FK(("owner_id",), "users", deferrable="DEFERRABLE INITIALLY DEFERRED")],
        ['CONSTRAINT "organizations_slug_key" UNIQUE (slug)']),
    Table("users", [
        ("id", f"{KEY} NOT NULL"), ("organization_id", KEY), ("invited_by_id", KEY),
        ("email", "text NOT NULL"), ("display_name", "text"),
        ("created_at", "timestamptz NOT NULL DEFAULT now()")],
        [FK(("organization_id",), "organizations", on_delete="SET NULL"),
         FK(("invited_by_id",), "users", on_delete="SET NULL")],
        ['CONSTRAINT "users_email_key" UNIQUE (email)']),
    Table("documents", [
        ("id", f"{KEY} NOT NULL"), ("organization_id", f"{KEY} NOT NULL"), ("owner_id", KEY),
        ("parent_id", KEY), ("title", "text NOT NULL"), ("body", "text"),
        ("created_at", "timestamptz NOT NULL DEFAULT now()"), ("updated_at", "timestamptz")],
        [FK(("organization_id",), "organizations", on_delete="CASCADE"),
         FK(("owner_id",), "users", on_delete="SET NULL"),
         FK(("parent_id",), "documents", on_delete="CASCADE")],
        ['CONSTRAINT "documents_organization_id_id_key" UNIQUE (organization_id, id)']),
    _satellite("memberships", [ORG, USER], payload="role text NOT NULL"),
    _satellite("invitations", [ORG, ("invited_by_id", "users", "SET NULL")], payload="email text NOT NULL"),
    _satellite("api_tokens", [USER, ORG], payload="token_hash text NOT NULL"),
    _satellite("document_versions", [DOC, ("author_id", "users", "SET NULL")], payload="version integer NOT NULL"),
    _satellite("comments", [DOC, ("author_id", "users", "SET NULL")], payload="body text"),
    _satellite("tags", [ORG], payload="name text NOT NULL"),
    Table("document_tags", [("document_id", f"{KEY} NOT NULL"), ("tag_id", f"{ID} NOT NULL")],
          [FK(("document_id",), "documents", on_delete="CASCADE"), FK(("tag_id",), "tags", on_delete="CASCADE")],
          primary_key=("document_id", "tag_id")),
    Table("document_shares", [
        ("id", f"{ID} NOT NULL"), ("organization_id", f"{KEY} NOT NULL"), ("document_id", f"{KEY} NOT NULL"),
        ("shared_with_id", KEY), ("permission", "text NOT NULL"),
        ("created_at", "timestamptz NOT NULL DEFAULT now()")],
        [FK(("organization_id", "document_id"), "documents", ("organization_id", "id"), on_delete="CASCADE",
            deferrable="DEFERRABLE", name="document_shares_document_fkey"),
         FK(("shared_with_id",), "users", on_delete="CASCADE")]),
    _satellite("notifications", [USER, ("document_id", "documents", "SET NULL")], payload="message text"),
    # actor_id holds user ids but was never given an FK: investigation flags it.
    Table("audit_events", [
        ("id", f"{ID} NOT NULL"), ("organization_id", KEY), ("actor_id", KEY), ("action", "text NOT NULL"),
        ("created_at", "timestamptz NOT NULL DEFAULT now()")],
        [FK(("organization_id",), "organizations", on_delete="SET NULL")]),
    _satellite("projects", [ORG, CREATOR, ("lead_id", "users", "SET NULL")]),
    _satellite("project_documents", [("project_id", "projects", "CASCADE"), DOC], payload="position integer"),
    _satellite("workspaces", [ORG, CREATOR, ("default_project_id", "projects", "SET NULL")]),
    _satellite("workspace_members", [("workspace_id", "workspaces", "CASCADE"), USER], payload="role text"),
    _satellite("teams", [ORG, CREATOR, ("workspace_id", "workspaces", "CASCADE")]),
    _satellite("team_members", [("team_id", "teams", "CASCADE"), USER], payload="role text"),
    _satellite("billing_accounts", [ORG, ("billing_contact_id", "users", "SET NULL")], payload="plan text"),
    _satellite("invoices", [("billing_account_id", "billing_accounts", "CASCADE"), ORG,
                            ("issued_by_id", "users", "SET NULL")], payload="total_cents bigint"),
    _satellite("invoice_items", [("invoice_id", "invoices", "CASCADE")], payload="amount_cents bigint"),
    _satellite("subscriptions", [ORG, ("billing_account_id", "billing_accounts", "CASCADE"), CREATOR],
               payload="status text"),
    _satellite("payment_methods", [("billing_account_id", "billing_accounts", "CASCADE"), CREATOR],
               payload="brand text"),
    _satellite("webhooks", [ORG, CREATOR], payload="url text"),
    _satellite("webhook_deliveries", [("webhook_id", "webhooks", "CASCADE"), ("document_id", "documents", "SET NULL")],
               payload="status_code integer"),
    _satellite("integrations", [ORG, CREATOR], payload="provider text"),
    _satellite("integration_tokens", [("integration_id", "integrations", "CASCADE"), USER], payload="scope text"),
    _satellite("favorites", [USER, DOC]),
    _satellite("bookmarks", [USER, DOC, ("folder_hint_id", "projects", "SET NULL")]),
    _satellite("document_links", [("source_document_id", "documents", "CASCADE"),
                                  ("target_document_id", "documents", "CASCADE")], payload="kind text"),
    _satellite("attachments", [DOC, ("uploaded_by_id", "users", "SET NULL")], payload="filename text"),
    _satellite("attachment_versions", [("attachment_id", "attachments", "CASCADE"), CREATOR],
               payload="size_bytes bigint"),
    _satellite("reviews", [DOC, ("reviewer_id", "users", "SET NULL")], payload="state text"),
    _satellite("review_comments", [("review_id", "reviews", "CASCADE"), ("author_id", "users", "SET NULL")],
               payload="body text"),
    _satellite("approvals", [DOC, ("approver_id", "users", "SET NULL")], payload="decision text"),
    _satellite("approval_steps", [("approval_id", "approvals", "CASCADE"), ("assignee_id", "users", "SET NULL")],
               payload="position integer"),
    _satellite("reminders", [USER, ("document_id", "documents", "SET NULL")], payload="due_at timestamptz"),
    _satellite("calendar_events", [ORG, CREATOR, ("document_id", "documents", "SET NULL")],
               payload="starts_at timestamptz"),
    _satellite("event_attendees", [("calendar_event_id", "calendar_events", "CASCADE"), USER], payload="rsvp text"),
    _satellite("login_events", [USER], payload="ip text"),
    _satellite("password_resets", [USER], payload="token_hash text"),
    _satellite("email_verifications", [USER], payload="token_hash text"),
    _satellite("organization_settings", [ORG, ("updated_by_id", "users", "SET NULL")], payload="settings jsonb"),
    _satellite("user_settings", [USER], payload="settings jsonb"),
    _satellite("exports", [ORG, ("requested_by_id", "users", "SET NULL"), ("document_id", "documents", "SET NULL")],
               payload="status text"),
    _satellite("imports", [ORG, ("requested_by_id", "users", "SET NULL"),
                           ("target_project_id", "projects", "SET NULL")], payload="status text"),
    _satellite("search_history", [USER, ORG], payload="query text"),
    _satellite("share_links", [DOC, CREATOR], payload="token text"),
]


def create_table_sql(table: Table, key_type: str, *, with_fks: bool = False, uuid_defaults: bool = False) -> str:
    lines = []
    for name, spec in table.columns:
        spec = spec.replace(KEY, key_type)
        if uuid_defaults and name == "id" and table.name in KEYED_TABLES:
            spec += " DEFAULT gen_random_uuid()"
        lines.append(f"{name} {spec}")
    lines.append(f'CONSTRAINT "{table.name}_pkey" PRIMARY KEY ({", ".join(table.primary_key)})')
    lines += table.extra
    if with_fks:
        lines += [fk.sql(table.name) for fk in table.fks]
    return f"CREATE TABLE {table.name} (\n    " + ",\n    ".join(lines) + "\n)"


def foreign_key_sql(table: Table) -> list[str]:
    return [f"ALTER TABLE {table.name} ADD {fk.sql(table.name)}" for fk in table.fks]


def index_sql(table: Table) -> list[str]:
    """An index per FK column set, as the app's models declare them."""
    return [f'CREATE INDEX "ix_{table.name}_{"_".join(fk.columns)}" ON {table.name} ({", ".join(fk.columns)})'
            for fk in table.fks]


def schema_sql(key_type: str, *, uuid_defaults: bool = False, exclude=()) -> list[str]:
    """Every table, then every FK (so cycles need no ordering), then indexes."""
    tables = [t for t in TABLES if t.name not in exclude]
    statements = [create_table_sql(t, key_type, uuid_defaults=uuid_defaults) for t in tables]
    statements += [sql for t in tables for sql in foreign_key_sql(t)]
    statements += [sql for t in tables for sql in index_sql(t)]
    return statements
