"""Baseline: the schema as ``create_all`` made it before migrations existed.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing: a database of any earlier version is stamped here, and the revisions
    after this one look at what it has."""


def downgrade() -> None:
    """Nothing to undo."""
