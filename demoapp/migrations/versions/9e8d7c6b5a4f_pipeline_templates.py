"""pipeline_templates

Revision ID: 9e8d7c6b5a4f
Revises: 7a8b9c0d1e2f
"""

import sqlalchemy as sa
from alembic import op

revision = "9e8d7c6b5a4f"
down_revision = "7a8b9c0d1e2f"


def upgrade() -> None:
    op.create_table(
        "pipeline_templates",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organization_id", sa.String(36), sa.ForeignKey("organizations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("created_by_id", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("name", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pipeline_templates")
