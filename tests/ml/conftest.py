"""Fixtures of the ML core tests; the data generators live in ``ml_data.py``."""

from __future__ import annotations

import pytest
from ml_data import make_entities, make_sentiment, make_tickets


@pytest.fixture(scope="session")
def sentiment():
    return make_sentiment(240, seed=1)


@pytest.fixture(scope="session")
def tickets():
    return make_tickets(200, seed=2)


@pytest.fixture(scope="session")
def entities():
    return make_entities(200, seed=3)
