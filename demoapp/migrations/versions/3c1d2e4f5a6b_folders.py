"""folders: nested folders per organization

Revision ID: 3c1d2e4f5a6b
Revises: ba1a5bcdb110
"""

import sqlalchemy as sa
from alembic import op

revision = "3c1d2e4f5a6b"
down_revision = "ba1a5bcdb110"


def upgrade() -> None:
    op.create_table(
        "folders",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organization_id", sa.String(36), sa.ForeignKey("organizations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("parent_id", sa.String(36), sa.ForeignKey("folders.id", ondelete="CASCADE")),
        sa.Column("created_by_id", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("name", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("folders")
