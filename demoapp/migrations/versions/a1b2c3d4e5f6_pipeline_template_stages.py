"""pipeline_template_stages

Revision ID: a1b2c3d4e5f6
Revises: 9e8d7c6b5a4f
"""

import sqlalchemy as sa
from alembic import op

revision = "a1b2c3d4e5f6"
down_revision = "9e8d7c6b5a4f"


def upgrade() -> None:
    op.create_table(
        "pipeline_template_stages",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("template_id", sa.String(36), sa.ForeignKey("pipeline_templates.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pipeline_template_stages")
