"""KNAS Studio core library: search spaces, models, data, proxies, statistics.

Plain library: no knowledge of the dashboard, the workers or the database.
"""

__version__ = "0.1.0"
