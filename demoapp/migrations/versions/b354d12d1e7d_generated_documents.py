"""generated_documents: documents made from templates

Revision ID: b354d12d1e7d
Revises: c2d3e4f5a6b7
"""

import sqlalchemy as sa
from alembic import op

revision = "b354d12d1e7d"
down_revision = "c2d3e4f5a6b7"


def upgrade() -> None:
    op.create_table(
        "generated_documents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("template_id", sa.String(36), sa.ForeignKey("document_templates.id", ondelete="SET NULL")),
        sa.Column("document_id", sa.String(36), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("generated_by_id", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")),
    )


def downgrade() -> None:
    op.drop_table("generated_documents")
