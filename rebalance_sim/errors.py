"""The simulator's own error: a configuration it cannot run (a scenario, a price path, a replay
file). The message names the field and says what is wrong, in one line."""

from __future__ import annotations


class SimConfigError(ValueError):
    """The simulator's configuration is invalid (`rebalance-bot sim` exits 2 on it)."""
