"""Exported models: file, parity figures against PyTorch and latency per device

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 04:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_export",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version", AutoString(length=64), nullable=False),
        sa.Column("format", AutoString(length=16), nullable=False),
        sa.Column("int8", sa.Boolean(), nullable=False),
        sa.Column("engine", AutoString(length=32), nullable=False),
        sa.Column("path", AutoString(), nullable=False),
        sa.Column("sha256", AutoString(length=64), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("reason", AutoString(), nullable=False),
        sa.Column("top1_agreement", sa.Float(), nullable=True),
        sa.Column("blind_accuracy_torch", sa.Float(), nullable=True),
        sa.Column("blind_accuracy_export", sa.Float(), nullable=True),
        sa.Column("blind_images", sa.Integer(), nullable=False),
        sa.Column("blind_sets", sa.JSON(), nullable=False),
        sa.Column("device", AutoString(length=128), nullable=False),
        sa.Column("batch1_ms", sa.Float(), nullable=True),
        sa.Column("batch32_images_per_s", sa.Float(), nullable=True),
        sa.Column("torch_batch1_ms", sa.Float(), nullable=True),
        sa.Column("torch_batch32_images_per_s", sa.Float(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_version", "format", "int8", name="uq_model_export_version_format"),
    )
    op.create_index("ix_model_export_model_version", "model_export", ["model_version"])


def downgrade() -> None:
    op.drop_index("ix_model_export_model_version", table_name="model_export")
    op.drop_table("model_export")
