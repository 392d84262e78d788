"""Evaluations, robustness runs, gate verdicts, approvals, stage changes; calibrated thresholds on model versions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 20:40:45.294437
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("dataset", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("split", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("coarse_accuracy", sa.Float(), nullable=True),
        sa.Column("accepted_accuracy", sa.Float(), nullable=True),
        sa.Column("unknown_rate", sa.Float(), nullable=False),
        sa.Column("mean_detection_rate", sa.Float(), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("coarse_labels", sa.JSON(), nullable=False),
        sa.Column("per_class", sa.JSON(), nullable=False),
        sa.Column("per_class_coarse", sa.JSON(), nullable=False),
        sa.Column("confusion", sa.JSON(), nullable=False),
        sa.Column("confusion_coarse", sa.JSON(), nullable=False),
        sa.Column("report_path", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evaluation_dataset"), ["dataset"], unique=False)
        batch_op.create_index(batch_op.f("ix_evaluation_model_version"), ["model_version"], unique=False)

    op.create_table(
        "gate_verdict",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("production_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("blind_sets", sa.JSON(), nullable=False),
        sa.Column("flow_run_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("gate_verdict", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gate_verdict_model_version"), ["model_version"], unique=False)

    op.create_table(
        "robustness",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("dataset", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("split", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("tone", sa.JSON(), nullable=False),
        sa.Column("compression", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("robustness", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_robustness_model_version"), ["model_version"], unique=False)

    op.create_table(
        "stage_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("from_stage", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("to_stage", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("flow_run_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stage_change", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stage_change_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_stage_change_model_version"), ["model_version"], unique=False)

    op.create_table(
        "approval",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("verdict_id", sa.Integer(), nullable=False),
        sa.Column("flow_run_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reviewer", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("requested_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["verdict_id"],
            ["gate_verdict.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_approval_flow_run_id"), ["flow_run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_approval_model_version"), ["model_version"], unique=False)

    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.add_column(sa.Column("threshold", sa.Float(), nullable=True))
        # Existing model versions get an empty basis: they have no calibrated threshold yet.
        batch_op.add_column(sa.Column("threshold_basis", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.drop_column("threshold_basis")
        batch_op.drop_column("threshold")

    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_model_version"))
        batch_op.drop_index(batch_op.f("ix_approval_flow_run_id"))

    op.drop_table("approval")
    with op.batch_alter_table("stage_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stage_change_model_version"))
        batch_op.drop_index(batch_op.f("ix_stage_change_kind"))

    op.drop_table("stage_change")
    with op.batch_alter_table("robustness", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_robustness_model_version"))

    op.drop_table("robustness")
    with op.batch_alter_table("gate_verdict", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gate_verdict_model_version"))

    op.drop_table("gate_verdict")
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluation_model_version"))
        batch_op.drop_index(batch_op.f("ix_evaluation_dataset"))

    op.drop_table("evaluation")
