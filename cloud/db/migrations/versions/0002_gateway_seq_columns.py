"""gateways: the seq ledger's watermark and the boot id; seq counters as 64-bit.

Databases before 2026-11-28 lack ``seq_checked`` and ``boot_id``; the first ones kept
``last_seq`` as a 32-bit INTEGER, which a seq above 2**31 - 1 overflows on PostgreSQL.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _columns() -> dict[str, sa.types.TypeEngine[object]]:
    return {c["name"]: c["type"] for c in sa.inspect(op.get_bind()).get_columns("gateways")}


def upgrade() -> None:
    columns = _columns()
    if "seq_checked" not in columns:
        op.add_column("gateways", sa.Column("seq_checked", sa.BigInteger(), nullable=True))
    if "boot_id" not in columns:
        op.add_column("gateways", sa.Column("boot_id", sa.String(64), nullable=True))
    # SQLite's INTEGER is 64-bit already; PostgreSQL's is 32
    if op.get_bind().dialect.name != "sqlite" and not isinstance(
        columns["last_seq"], sa.BigInteger
    ):
        op.alter_column("gateways", "last_seq", type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    op.drop_column("gateways", "boot_id")
    op.drop_column("gateways", "seq_checked")
