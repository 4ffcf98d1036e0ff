"""The local exchange simulator: one exchange-neutral market engine served through venue
dialects (Binance spot and USDⓈ-M today) that ccxt's unmodified classes talk to.

Start one with `rebalance_sim.server.run_simulator` (in-process) or `rebalance-bot sim` (a process);
`rebalance_sim.client.binance_client` builds ccxt clients pointed at it. See docs/simulator.md.
"""
