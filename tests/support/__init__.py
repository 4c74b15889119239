"""Test helpers shared by every test suite (import as ``support.*``: ``tests/`` is on the
path because ``tests/conftest.py`` lives there)."""
