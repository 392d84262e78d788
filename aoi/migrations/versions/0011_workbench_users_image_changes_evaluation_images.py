"""Workbench accounts, image changes made by people, per-image answers of an evaluation

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 21:50:00
"""

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", AutoString(length=64), nullable=False),
        sa.Column("role", AutoString(length=16), nullable=False),
        sa.Column("password_hash", AutoString(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "image_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("action", AutoString(length=16), nullable=False),
        sa.Column("old_label", AutoString(length=64), nullable=True),
        sa.Column("new_label", AutoString(length=64), nullable=True),
        sa.Column("old_status", AutoString(length=16), nullable=False),
        sa.Column("new_status", AutoString(length=16), nullable=False),
        sa.Column("reason", AutoString(), nullable=False),
        sa.Column("by", AutoString(length=128), nullable=False),
        sa.Column("via", AutoString(length=8), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["image.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_image_change_image_id", "image_change", ["image_id"])
    op.create_index("ix_image_change_at", "image_change", ["at"])
    op.create_table(
        "evaluation_image",
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("true_label", AutoString(length=64), nullable=False),
        sa.Column("predicted", AutoString(length=64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("top", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["evaluation_id"], ["evaluation.id"]),
        sa.ForeignKeyConstraint(["image_id"], ["image.id"]),
        sa.PrimaryKeyConstraint("evaluation_id", "image_id"),
    )
    op.create_index("ix_evaluation_image_image_id", "evaluation_image", ["image_id"])


def downgrade() -> None:
    op.drop_index("ix_evaluation_image_image_id", table_name="evaluation_image")
    op.drop_table("evaluation_image")
    op.drop_index("ix_image_change_at", table_name="image_change")
    op.drop_index("ix_image_change_image_id", table_name="image_change")
    op.drop_table("image_change")
    op.drop_table("app_user")
