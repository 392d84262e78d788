"""Kept answers (the review queue) and the line's confirmed truth (live accuracy)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 03:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kept_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", AutoString(length=32), nullable=False),
        sa.Column("kind", AutoString(length=8), nullable=False),
        sa.Column("reason", AutoString(length=16), nullable=False),
        sa.Column("sha256", AutoString(length=64), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("model_version", AutoString(length=64), nullable=False),
        sa.Column("label", AutoString(length=64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("top", sa.JSON(), nullable=False),
        sa.Column("machine_id", AutoString(length=64), nullable=True),
        sa.Column("part_no", AutoString(length=64), nullable=True),
        sa.Column("upstream_code", AutoString(length=64), nullable=True),
        sa.Column("kept_at", UTCDateTime(), nullable=False),
        sa.Column("status", AutoString(length=16), nullable=False),
        sa.Column("true_label", AutoString(length=64), nullable=True),
        sa.Column("decided_by", AutoString(length=128), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("image_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["image_id"], ["image.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_index("ix_kept_answer_kind", "kept_answer", ["kind"])
    op.create_index("ix_kept_answer_sha256", "kept_answer", ["sha256"])
    op.create_index("ix_kept_answer_kept_at", "kept_answer", ["kept_at"])
    op.create_index("ix_kept_answer_status", "kept_answer", ["status"])
    op.create_table(
        "line_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", AutoString(length=32), nullable=False),
        sa.Column("label", AutoString(length=64), nullable=False),
        sa.Column("by", AutoString(length=128), nullable=False),
        sa.Column("source", AutoString(length=16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_index("ix_line_feedback_at", "line_feedback", ["at"])


def downgrade() -> None:
    op.drop_index("ix_line_feedback_at", table_name="line_feedback")
    op.drop_table("line_feedback")
    for column in ("status", "kept_at", "sha256", "kind"):
        op.drop_index(f"ix_kept_answer_{column}", table_name="kept_answer")
    op.drop_table("kept_answer")
