"""One production model per kind, enforced by a partial unique index

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:10:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEX = "uq_model_version_one_production"
WHERE = sa.text("stage = 'production'")
BY = "migration 0008"


def upgrade() -> None:
    # A catalog may already hold two production models of a kind (the race this index closes): the one made
    # production last stays, the others are archived, each with a stage_change row saying why.
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, version, kind FROM model_version WHERE stage = 'production' "
            "ORDER BY kind, stage_changed_at DESC, id DESC"
        )
    ).all()
    now = datetime.now(UTC)
    models = sa.table(
        "model_version",
        sa.column("id", sa.Integer),
        sa.column("stage", sa.String),
        sa.column("stage_changed_at", UTCDateTime()),
        sa.column("stage_changed_by", sa.String),
        sa.column("stage_reason", sa.String),
    )
    changes = sa.table(
        "stage_change",
        sa.column("model_version", sa.String),
        sa.column("kind", sa.String),
        sa.column("from_stage", sa.String),
        sa.column("to_stage", sa.String),
        sa.column("by", sa.String),
        sa.column("reason", sa.String),
        sa.column("at", UTCDateTime()),
    )
    kept: dict[str, str] = {}
    for row_id, version, kind in rows:
        if kind not in kept:
            kept[kind] = version
            continue
        reason = f"a second {kind} production model beside {kept[kind]}: archived when one per kind became a rule"
        bind.execute(
            models.update()
            .where(models.c.id == row_id)
            .values(stage="archived", stage_changed_at=now, stage_changed_by=BY, stage_reason=reason)
        )
        bind.execute(
            changes.insert().values(
                model_version=version,
                kind=kind,
                from_stage="production",
                to_stage="archived",
                by=BY,
                reason=reason,
                at=now,
            )
        )
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.create_index(INDEX, ["kind"], unique=True, postgresql_where=WHERE, sqlite_where=WHERE)


def downgrade() -> None:
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.drop_index(INDEX, postgresql_where=WHERE, sqlite_where=WHERE)
