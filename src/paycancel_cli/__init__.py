"""paycancel: cancel payments safely at five providers, one at a time or in bulk."""

__version__ = "0.1.0"
