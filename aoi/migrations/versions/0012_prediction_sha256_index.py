"""An index on the prediction log's content hash: the workbench's image page lists the answers given for an image

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 22:40:00
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prediction", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prediction_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("prediction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prediction_sha256"))
