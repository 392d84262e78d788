"""Alembic environment: runs against the connection or URL handed over by ``aoi.catalog.db``."""

from alembic import context
from sqlmodel import SQLModel

import aoi.catalog.models  # registers the tables on SQLModel.metadata

config = context.config
target_metadata = SQLModel.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    from aoi.catalog.db import make_engine

    engine = make_engine(config.attributes["sqlalchemy_url"])
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
