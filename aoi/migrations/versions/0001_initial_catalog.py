"""Initial catalog: ingest batches, images (with tone and compression metrics), quarantine.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 06:14:23.102583
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("format", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("input_path", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("machine_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("part_no", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("discovered", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("by_label", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("flow_run_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ingest_batch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ingest_batch_key"), ["key"], unique=False)
        batch_op.create_index(batch_op.f("ix_ingest_batch_status"), ["status"], unique=False)

    op.create_table(
        "image",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("file_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("mode", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("format", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("captured_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("ingested_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("machine_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("part_no", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("upstream_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("group_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("parent_file", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("parent_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("bbox", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("brightness", sa.Float(), nullable=False),
        sa.Column("mean_r", sa.Float(), nullable=False),
        sa.Column("mean_g", sa.Float(), nullable=False),
        sa.Column("mean_b", sa.Float(), nullable=False),
        sa.Column("r_minus_g", sa.Float(), nullable=False),
        sa.Column("r_minus_b", sa.Float(), nullable=False),
        sa.Column("g_minus_b", sa.Float(), nullable=False),
        sa.Column("b_diff", sa.Float(), nullable=False),
        sa.Column("jpeg_quality", sa.Integer(), nullable=True),
        sa.Column("bytes_per_pixel", sa.Float(), nullable=False),
        sa.Column("compressed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["ingest_batch.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256"),
    )
    with op.batch_alter_table("image", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_image_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_image_captured_at"), ["captured_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_image_group_key"), ["group_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_image_ingested_at"), ["ingested_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_image_label"), ["label"], unique=False)
        batch_op.create_index(batch_op.f("ix_image_machine_id"), ["machine_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_image_part_no"), ["part_no"], unique=False)
        batch_op.create_index(batch_op.f("ix_image_source"), ["source"], unique=False)
        batch_op.create_index(batch_op.f("ix_image_status"), ["status"], unique=False)

    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("file", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("origin_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=True),
        sa.Column("kept", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["ingest_batch.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_id", "origin_key", "fingerprint", name="uq_quarantine_batch_origin_fingerprint"),
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quarantine_batch_id"), ["batch_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantine_batch_id"))

    op.drop_table("quarantine")
    with op.batch_alter_table("image", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_image_status"))
        batch_op.drop_index(batch_op.f("ix_image_source"))
        batch_op.drop_index(batch_op.f("ix_image_part_no"))
        batch_op.drop_index(batch_op.f("ix_image_machine_id"))
        batch_op.drop_index(batch_op.f("ix_image_label"))
        batch_op.drop_index(batch_op.f("ix_image_ingested_at"))
        batch_op.drop_index(batch_op.f("ix_image_group_key"))
        batch_op.drop_index(batch_op.f("ix_image_captured_at"))
        batch_op.drop_index(batch_op.f("ix_image_batch_id"))

    op.drop_table("image")
    with op.batch_alter_table("ingest_batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingest_batch_status"))
        batch_op.drop_index(batch_op.f("ix_ingest_batch_key"))

    op.drop_table("ingest_batch")
