"""hlops: project-as-code for the Humanloop API."""

__version__ = "0.1.0"
