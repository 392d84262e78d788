"""The catalog: SQLModel tables, engine and migrations, and the queries the CLI and flows use."""
