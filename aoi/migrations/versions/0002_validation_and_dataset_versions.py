"""Validation (specs, runs, exclusions) and dataset versions (manifests, blind-set hash claims).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 06:23:06.066848
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("parent", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("spec_key", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("split", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("per_class", sa.Integer(), nullable=True),
        sa.Column("group_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("taxonomy", sa.JSON(), nullable=False),
        sa.Column("cleaning", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("dropped_blind", sa.Integer(), nullable=False),
        sa.Column("blind_date", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("dataset_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dataset_version_role"), ["role"], unique=False)

    op.create_table(
        "spec",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("yaml", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "version", name="uq_spec_name_version"),
    )
    with op.batch_alter_table("spec", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_spec_name"), ["name"], unique=False)

    op.create_table(
        "hash_claim",
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset_version.id"],
        ),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "validation_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("spec_id", sa.Integer(), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("evaluated", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("excluded", sa.Integer(), nullable=False),
        sa.Column("failures", sa.JSON(), nullable=False),
        sa.Column("set_failures", sa.JSON(), nullable=False),
        sa.Column("report_path", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("pictures", sa.JSON(), nullable=False),
        sa.Column("flow_run_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["spec_id"],
            ["spec.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("validation_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_validation_run_spec_id"), ["spec_id"], unique=False)

    op.create_table(
        "dataset_member",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("split", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("group_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset_version.id"],
        ),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["image.id"],
        ),
        sa.PrimaryKeyConstraint("dataset_id", "image_id"),
    )
    with op.batch_alter_table("dataset_member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dataset_member_sha256"), ["sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_dataset_member_split"), ["split"], unique=False)

    op.create_table(
        "exclusion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("restored_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("restored_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("restore_note", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["image.id"],
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["validation_run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("exclusion", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exclusion_image_id"), ["image_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_exclusion_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("exclusion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exclusion_run_id"))
        batch_op.drop_index(batch_op.f("ix_exclusion_image_id"))

    op.drop_table("exclusion")
    with op.batch_alter_table("dataset_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_member_split"))
        batch_op.drop_index(batch_op.f("ix_dataset_member_sha256"))

    op.drop_table("dataset_member")
    with op.batch_alter_table("validation_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_validation_run_spec_id"))

    op.drop_table("validation_run")
    op.drop_table("hash_claim")
    with op.batch_alter_table("spec", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spec_name"))

    op.drop_table("spec")
    with op.batch_alter_table("dataset_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_version_role"))

    op.drop_table("dataset_version")
