"""Live accuracy of confirmed answers stored with each drift check

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 03:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("drift_check", schema=None) as batch_op:
        batch_op.add_column(sa.Column("live_accuracy", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("drift_check", schema=None) as batch_op:
        batch_op.drop_column("live_accuracy")
