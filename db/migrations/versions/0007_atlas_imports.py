"""atlas imports, and indexes for the whole-space views

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00

``atlas_imports`` records every import of a score atlas file (its name, path, SHA-256, set-ups,
spaces, proxies and row counts, when), and ``proxy_scores.atlas_import_id`` names the import
that stored a score (NULL for a computed one, as for every score stored before), so the
dashboard can label precomputed scores with their set-up and origin. A downgrade drops both;
the imported scores stay, as ordinary cache entries.

Two indexes serve the views over a whole space (15,625 architectures x several proxies): scores
by ``(proxy, dataset)`` (the unique index leads with the architecture) and benchmark accuracies
by ``(dataset, metric, value)`` (an architecture's percentile counts the values below its own).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'atlas_imports',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('file', sa.String(255), nullable=False),
        sa.Column('path', sa.Text(), nullable=False, server_default=''),
        sa.Column('sha256', sa.String(64), nullable=False),
        sa.Column('setups', sa.JSON(), nullable=False),
        sa.Column('spaces', sa.JSON(), nullable=False),
        sa.Column('proxies', sa.JSON(), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('inserted', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('identical', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('conflicts', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table('proxy_scores') as batch:
        batch.add_column(sa.Column('atlas_import_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_proxy_scores_atlas_import', 'atlas_imports', ['atlas_import_id'], ['id'],
                                 ondelete='SET NULL')
    op.create_index('ix_proxy_score_proxy_dataset', 'proxy_scores', ['proxy', 'dataset'])
    op.create_index('ix_benchmark_dataset_metric_value', 'benchmark_accuracies', ['dataset', 'metric', 'value'])


def downgrade() -> None:
    op.drop_index('ix_benchmark_dataset_metric_value', table_name='benchmark_accuracies')
    op.drop_index('ix_proxy_score_proxy_dataset', table_name='proxy_scores')
    with op.batch_alter_table('proxy_scores') as batch:
        batch.drop_constraint('fk_proxy_scores_atlas_import', type_='foreignkey')
        batch.drop_column('atlas_import_id')
    op.drop_table('atlas_imports')
