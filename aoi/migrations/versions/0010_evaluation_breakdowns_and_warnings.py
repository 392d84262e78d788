"""Evaluations per machine and per part, the confusion with an Unknown column, warnings (also on gate verdicts)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confusion_unknown", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("per_machine", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("per_part", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("warnings", sa.JSON(), nullable=True))
    with op.batch_alter_table("gate_verdict", schema=None) as batch_op:
        batch_op.add_column(sa.Column("warnings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gate_verdict", schema=None) as batch_op:
        batch_op.drop_column("warnings")
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.drop_column("warnings")
        batch_op.drop_column("per_part")
        batch_op.drop_column("per_machine")
        batch_op.drop_column("confusion_unknown")
