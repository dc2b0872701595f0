"""baseline: the core schema (organizations, users, documents and their satellites)

Revision ID: ba1a5bcdb110
Revises:
"""

import sqlalchemy as sa
from alembic import op

from demoapp import schema

revision = "ba1a5bcdb110"
down_revision = None


def _id():
    return sa.Column("id", sa.String(36), primary_key=True)


def _created_at():
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "organizations", _id(),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("slug", sa.Text(), nullable=False, unique=True),
        sa.Column("owner_id", sa.String(36)),
        _created_at(),
    )
    op.create_table(
        "users", _id(),
        sa.Column("organization_id", sa.String(36), sa.ForeignKey("organizations.id", ondelete="SET NULL")),
        sa.Column("invited_by_id", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("email", sa.Text(), nullable=False, unique=True),
        sa.Column("display_name", sa.Text()),
        _created_at(),
    )
    op.create_foreign_key("organizations_owner_id_fkey", "organizations", "users", ["owner_id"], ["id"],
                          deferrable=True, initially="DEFERRED")
    op.create_table(
        "documents", _id(),
        sa.Column("organization_id", sa.String(36), sa.ForeignKey("organizations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("owner_id", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("parent_id", sa.String(36), sa.ForeignKey("documents.id", ondelete="CASCADE")),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text()),
        _created_at(),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("organization_id", "id"),
    )
    # The satellites, from the same schema definition the fixture uses.
    for statement in schema.schema_sql("varchar(36)", exclude=schema.KEYED_TABLES):
        op.execute(statement)


def downgrade() -> None:
    for table in reversed(schema.TABLES):
        if table.name not in schema.KEYED_TABLES:
            op.drop_table(table.name)
    op.drop_constraint("organizations_owner_id_fkey", "organizations", type_="foreignkey")
    op.drop_table("documents")
    op.drop_table("users")
    op.drop_table("organizations")
