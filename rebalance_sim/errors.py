"""The simulator's own errors (it imports nothing of the bot that talks to it)."""

from __future__ import annotations


class SimError(Exception):
    """The simulator cannot do what it was asked (listen, write its keys file)."""


class SimConfigError(SimError, ValueError):
    """A scenario, price path or seed that the simulator refuses; the message names the field."""
