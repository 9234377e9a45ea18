"""devices: the declared diagnostic fields of a device (``extra_fields``, JSON).

A device's extra fields (a flow meter's temperatures, signal quality, error bits) are
declared in its gateway's config and reach the cloud by ``akita cloud device import`` or
the gateway's retained meta; the ingest checks every reading's extra fields against them.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("devices")}
    if "extra_fields" not in columns:
        op.add_column("devices", sa.Column("extra_fields", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("devices", "extra_fields")
