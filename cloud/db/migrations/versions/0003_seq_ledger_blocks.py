"""Seq ledger: the row-per-batch table ``gateway_seqs`` (before 2026-11-28) moves into
packed blocks (``gateway_seq_blocks``) and is dropped.

Without this, seqs recorded by the old version and not yet swept would count as gaps
after the upgrade. Stop the old workers first: their next flush would fail.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sys
from array import array
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _pack(seqs: list[int]) -> bytes:
    # as cloud.seq_ledger.pack: sorted int64 little-endian (copied: a migration must not
    # change when the code does)
    packed = array("q", sorted(seqs))
    if sys.byteorder != "little":  # pragma: no cover
        packed.byteswap()
    return packed.tobytes()


def _utc(at: datetime | str) -> datetime:
    if isinstance(at, str):  # SQLite without type affinity on a raw table
        at = datetime.fromisoformat(at)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def upgrade() -> None:
    bind = op.get_bind()
    tables = sa.inspect(bind).get_table_names()
    if "gateway_seqs" not in tables:
        return
    if "gateway_seq_blocks" not in tables:
        op.create_table(
            "gateway_seq_blocks",
            sa.Column(
                "id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                primary_key=True,
                autoincrement=True,
            ),
            sa.Column("gateway_id", sa.String(64), nullable=False),
            sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("missing", sa.Boolean(), nullable=False),
            sa.Column("lo", sa.BigInteger(), nullable=False),
            sa.Column("hi", sa.BigInteger(), nullable=False),
            sa.Column("seqs", sa.LargeBinary(), nullable=False),
        )
        op.create_index(
            "ix_gateway_seq_blocks_gateway_lo", "gateway_seq_blocks", ["gateway_id", "lo"]
        )
    old = sa.Table("gateway_seqs", sa.MetaData(), autoload_with=bind)
    blocks = sa.Table("gateway_seq_blocks", sa.MetaData(), autoload_with=bind)
    groups: dict[tuple[str, bool, datetime], list[int]] = {}
    query = sa.select(old.c.gateway_id, old.c.seq, old.c.recorded_at, old.c.missing)
    for gateway_id, seq, at, missing in bind.execute(query):
        groups.setdefault((gateway_id, bool(missing), _utc(at)), []).append(seq)
    rows = [
        {
            "gateway_id": g,
            "recorded_at": at,
            "missing": m,
            "lo": min(seqs),
            "hi": max(seqs),
            "seqs": _pack(seqs),
        }
        for (g, m, at), seqs in groups.items()
    ]
    if rows:
        bind.execute(sa.insert(blocks), rows)
    op.drop_table("gateway_seqs")


def downgrade() -> None:
    """Not supported: the blocks hold what the rows held; run the older version's code
    on a copy restored from backup instead."""
    raise NotImplementedError("0003 cannot be downgraded; restore a backup instead")
