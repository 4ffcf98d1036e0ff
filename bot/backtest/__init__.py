"""Backtests: the daemon's decision code walked over price history (see `engine`)."""
