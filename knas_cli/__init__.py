"""The ``knas`` command line."""
