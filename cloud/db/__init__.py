"""The relational store (SQLAlchemy 2): device registry, gateways, alerts and their
transitions, API tokens, resident subscriptions and problem reports.

SQLite file by default; PostgreSQL (``postgresql+psycopg://...``) in production.
Each feature adds its tables as a module here, all on :class:`Base`.
"""

from cloud.db.base import Base, make_engine, make_sessionmaker

__all__ = ["Base", "make_engine", "make_sessionmaker"]
