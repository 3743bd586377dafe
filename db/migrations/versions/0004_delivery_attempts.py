"""delivery attempts, chunk windows and transient failures

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 21:20:00

``search_candidates`` count how often a worker started scoring them (``attempts``: after
``KNAS_MAX_ATTEMPTS`` deliveries that died, the architecture fails with the reason), record the
chunk message that holds them (``chunk``: the dispatch window counts chunks in flight) and the
worker process working on them (``claimed_by``, ``host:pid``: a claim of a dead process on the
same host has expired). ``proxy_scores.transient`` marks failures that may not recur (out of
memory, a dead worker): they fail their search, but a later search scores the architecture again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('search_candidates') as batch:
        batch.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('chunk', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('claimed_by', sa.String(length=255), nullable=True))
    with op.batch_alter_table('proxy_scores') as batch:
        batch.add_column(sa.Column('transient', sa.Boolean(), nullable=False, server_default=sa.false()))
    # failures stored before this revision: out of memory is the transient kind they can hold
    op.execute("UPDATE proxy_scores SET transient = true WHERE lower(error) LIKE '%out of memory%'")


def downgrade() -> None:
    with op.batch_alter_table('proxy_scores') as batch:
        batch.drop_column('transient')
    with op.batch_alter_table('search_candidates') as batch:
        batch.drop_column('claimed_by')
        batch.drop_column('chunk')
        batch.drop_column('attempts')
