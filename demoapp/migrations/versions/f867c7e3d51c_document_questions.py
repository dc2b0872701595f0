"""document_questions: questions asked about a document

Revision ID: f867c7e3d51c
Revises: a1b2c3d4e5f6
"""

import sqlalchemy as sa
from alembic import op

revision = "f867c7e3d51c"
down_revision = "a1b2c3d4e5f6"


def upgrade() -> None:
    op.create_table(
        "document_questions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("document_id", sa.String(36), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("asked_by", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("answered_by", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text()),
    )


def downgrade() -> None:
    op.drop_table("document_questions")
