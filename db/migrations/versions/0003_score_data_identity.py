"""score data identity: proxy scores and searches record the images they were computed on

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 20:40:00

A score's value depends on the images of its batch, so the images' identity joins the unique
key of ``proxy_scores`` (rows stored before this revision keep an empty identity and so never
match a new search's key). Searches record the identity and a description of their images.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

OLD_KEY = ['architecture_id', 'proxy', 'dataset', 'batch_size', 'seed', 'device_type', 'model']
NEW_KEY = ['architecture_id', 'proxy', 'dataset', 'data', 'batch_size', 'seed', 'device_type', 'model']


def upgrade() -> None:
    with op.batch_alter_table('proxy_scores') as batch:
        batch.add_column(sa.Column('data', sa.String(length=128), nullable=False, server_default=''))
        batch.drop_constraint('uq_proxy_score', type_='unique')
        batch.create_unique_constraint('uq_proxy_score', NEW_KEY)
    with op.batch_alter_table('searches') as batch:
        batch.add_column(sa.Column('data_id', sa.String(length=128), nullable=True))
        batch.add_column(sa.Column('data_description', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('searches') as batch:
        batch.drop_column('data_description')
        batch.drop_column('data_id')
    op.execute("DELETE FROM proxy_scores WHERE data <> ''")
    with op.batch_alter_table('proxy_scores') as batch:
        batch.drop_constraint('uq_proxy_score', type_='unique')
        batch.create_unique_constraint('uq_proxy_score', OLD_KEY)
        batch.drop_column('data')
