"""Ingest batches marked as reference samples (colour calibration)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_batch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reference", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f("ix_ingest_batch_reference"), ["reference"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ingest_batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingest_batch_reference"))
        batch_op.drop_column("reference")
