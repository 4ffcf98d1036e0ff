"""rebalance-bot: keeps a crypto portfolio of spot holdings and perpetual futures at target."""

__version__ = "0.1.0"
