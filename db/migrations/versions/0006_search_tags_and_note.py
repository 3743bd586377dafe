"""search tags and note

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:00:00

``searches`` get ``tags`` (a JSON list of labels, empty for the searches already stored) and
``note`` (free text, empty), which the dashboard shows and, with write access, edits: seed runs
of the same configuration are otherwise told apart only by their ids.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('searches') as batch:
        batch.add_column(sa.Column('tags', sa.JSON(), nullable=False, server_default='[]'))
        batch.add_column(sa.Column('note', sa.Text(), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('searches') as batch:
        batch.drop_column('note')
        batch.drop_column('tags')
