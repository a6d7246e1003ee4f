"""savin: event-driven victim notification engine."""

__version__ = "0.1.0"
