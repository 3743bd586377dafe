"""fisher and flops redefined: drop their cached scores

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 00:40:00

``fisher`` now sums the channel Fisher information once per weight (the reference definition of
Abdelfattah et al.'s released code) and ``flops`` counts pooling and biases as NAS-Bench-201
does. Values cached under the old definitions would stand in for the new ones (the score key
names the proxy, not its definition), so they are removed; searches compute them again.
Searches that already finished keep the values they ranked with.
"""

from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM proxy_scores WHERE proxy IN ('fisher', 'flops')")


def downgrade() -> None:
    pass  # the deleted values were computed with the old definitions; nothing to restore
