"""rbac_audit_logs: who changed whose role

Revision ID: 7a8b9c0d1e2f
Revises: 3c1d2e4f5a6b
"""

import sqlalchemy as sa
from alembic import op

revision = "7a8b9c0d1e2f"
down_revision = "3c1d2e4f5a6b"


def upgrade() -> None:
    op.create_table(
        "rbac_audit_logs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organization_id", sa.String(36), sa.ForeignKey("organizations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("actor_id", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("subject_id", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rbac_audit_logs")
