"""Training runs (the training records) and model versions (BentoML store tags, stages).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 07:00:06.826239
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("dataset", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("arch", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("mean_detection_rate", sa.Float(), nullable=True),
        sa.Column("valid_accuracy", sa.Float(), nullable=True),
        sa.Column("labelled_images", sa.Integer(), nullable=False),
        sa.Column("total_images", sa.Integer(), nullable=False),
        sa.Column("label_kinds", sa.Integer(), nullable=False),
        sa.Column("epochs", sa.JSON(), nullable=False),
        sa.Column("model_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("curves_path", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("training_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_training_run_dataset"), ["dataset"], unique=False)
        batch_op.create_index(batch_op.f("ix_training_run_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_training_run_status"), ["status"], unique=False)

    op.create_table(
        "model_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("stage", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("dataset", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("arch", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("bento_tag", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("stage_changed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("stage_changed_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("stage_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["training_run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version"),
    )
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_version_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_model_version_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_model_version_stage"), ["stage"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_version_stage"))
        batch_op.drop_index(batch_op.f("ix_model_version_run_id"))
        batch_op.drop_index(batch_op.f("ix_model_version_kind"))

    op.drop_table("model_version")
    with op.batch_alter_table("training_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_training_run_status"))
        batch_op.drop_index(batch_op.f("ix_training_run_kind"))
        batch_op.drop_index(batch_op.f("ix_training_run_dataset"))

    op.drop_table("training_run")
