"""Image quality metrics (sharpness, smear) on images and the prediction log

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 12:00:00

Rows from before this revision get NULL: not measured, which validation and monitoring treat as unknown.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = ("image", "prediction")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("sharpness", sa.Float(), nullable=True))
            batch_op.add_column(sa.Column("smear", sa.Float(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("smear")
            batch_op.drop_column("sharpness")
