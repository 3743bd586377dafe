"""Celery workers: search orchestration, chunked scoring and candidate training."""
