"""The application being recovered: its schema, its Alembic migrations, and a
generator of its broken production database (uuid keys, a wrong alembic_version)."""
