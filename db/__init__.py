"""Results store: SQLAlchemy models, sessions, Alembic migrations and the repository layer.

``tasks/`` and ``app/`` talk to the database only through :mod:`db.repository`.
"""
