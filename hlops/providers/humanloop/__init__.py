"""The Humanloop provider (registered as ``humanloop``, the default): see :mod:`.provider`."""

from hlops.providers.humanloop.provider import HumanloopProvider

__all__ = ["HumanloopProvider"]
