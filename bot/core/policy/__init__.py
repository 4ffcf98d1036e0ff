"""Pure decision code: valuation, drift, triggers, target strategies and the planner.

Nothing in this package does I/O, reads a clock, logs or imports ccxt; every input arrives as an
argument (the current time included) and every output is a value from `bot.core.domain`.
"""
