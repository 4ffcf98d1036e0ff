"""Target strategies: pure functions from prices, statistics and config to sleeve targets.

Core-satellite (static weights per group), risk parity (inverse volatility or equal risk
contribution over a trailing covariance) and the seasonal/trend hedge overlay. Each returns a
`StrategyResult`: quantized `Decimal` targets and a JSON-able explanation for the audit log.
No I/O, no clock, no logging: prices and the current time arrive as arguments. Import from the
modules (`stats`, `risk_parity`, `core_satellite`, `overlay`, `result`, `errors`).
"""
