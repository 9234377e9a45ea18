"""Alembic's entry point: runs the migrations on the connection the caller passes
(:func:`cloud.db.migrations.upgrade`), never on a URL of its own."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through cloud.db.migrations.upgrade (akita cloud init-db)")
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
