"""The Label Studio provider (docs/providers.md): ``provider: labelstudio`` in hlops.yaml."""

from hlops.providers.labelstudio.provider import LabelStudioProvider

__all__ = ["LabelStudioProvider"]
