"""The admin control surface: Python methods and the `/_admin/…` JSON routes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp

from rebalance_sim.client import binance_client
from rebalance_sim.faults import FaultKind
from rebalance_sim.server import run_simulator

D = Decimal
SCENARIO: dict[str, Any] = {
    "clock": {"mode": "manual"},
    "accounts": [
        {"name": "main", "spot": {"USDT": "1000"}, "futures_wallet": "500"},
        {"name": "sub", "spot": {"USDT": "10"}},
    ],
}


async def test_admin_routes_steer_time_prices_funds_faults_and_read_the_ledger() -> None:
    async with run_simulator(SCENARIO, seed=2, log_requests=False) as sim:
        secret = sim.admin.credentials("main").secret.get_secret_value()
        seen: list[str] = []
        async with aiohttp.ClientSession(base_url=sim.base_url) as http:

            async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
                async with http.request(method, path, json=body) as reply:
                    seen.append(await reply.text())
                    return reply.status, await reply.json()

            start = (await call("GET", "/_admin/time"))[1]["now_ms"]
            assert (await call("POST", "/_admin/time/advance", {"ms": 3_600_000}))[1] == {
                "now_ms": start + 3_600_000
            }
            assert (await call("POST", "/_admin/prices", {"asset": "BTC", "price": "50000"}))[
                0
            ] == 200
            assert (await call("GET", "/_admin/accounts"))[1] == ["main", "sub"]
            status, account = await call(
                "POST", "/_admin/accounts/sub/fund", {"asset": "BTC", "amount": "0.5"}
            )
            assert status == 200
            assert account["spot"]["BTC"] == {"asset": "BTC", "free": "0.5", "locked": "0"}
            status, account = await call(
                "POST",
                "/_admin/accounts/main/fund",
                {"asset": "USDT", "amount": "250", "wallet": "futures"},
            )
            assert account["futures"]["wallet_balance"] == "750"

            # The default book: 2 bps spread, then 1 bp of impact per 100k USDT.
            spot = binance_client(sim.base_url, sim.admin.credentials("sub"))
            try:
                await spot.create_order("BTC/USDT", "market", "sell", 0.1)
            finally:
                await spot.close()
            (order,) = (await call("GET", "/_admin/orders?account=sub"))[1]
            assert (order["client_id"][:2], order["status"], order["filled"]) == (
                "x-",
                "filled",
                "0.1",
            )
            (fill,) = (await call("GET", "/_admin/fills"))[1]
            assert (fill["price"], fill["fee_asset"], fill["account"]) == (
                "49994.75",
                "USDT",
                "sub",
            )
            totals = (await call("GET", "/_admin/totals?account=sub"))[1]
            assert totals == {"traded_notional": "4999.475", "fees": {"USDT": "4.99947500"}}
            counts = (await call("GET", "/_admin/requests?account=sub"))[1]
            assert counts["spot.order.post"] == 1

            status, rules = await call(
                "POST",
                "/_admin/faults",
                {"rules": [{"kind": "http_503", "endpoint": "spot.time", "next": 1}]},
            )
            assert (status, rules["rules"][0]["kind"]) == (200, "http_503")
            async with http.get("/api/v3/time") as reply:
                assert reply.status == 503
            assert (await call("GET", "/_admin/faults"))[1]["injected"] == {"http_503": 1}
            assert sim.admin.fault_counts() == {FaultKind.HTTP_503: 1}
            status, error = await call("POST", "/_admin/faults", {"rules": [{"kind": "x"}]})
            assert status == 400
            assert error["error"].startswith("rules.0.kind: Input should be")
            status, error = await call("POST", "/_admin/accounts/nobody/fund", {"asset": "X"})
            assert status == 400
            assert (await call("DELETE", "/_admin/faults"))[1] == {"ok": True}
            halt = {"kind": "spot", "base": "ETH", "open": False}
            assert (await call("POST", "/_admin/markets", halt))[0] == 200
            async with http.get("/api/v3/exchangeInfo?symbol=ETHUSDT") as reply:
                assert (await reply.json())["symbols"][0]["status"] == "BREAK"
        assert all(secret not in text for text in seen)


async def test_admin_routes_are_off_unless_enabled() -> None:
    async with (
        run_simulator(SCENARIO, admin=False, log_requests=False) as sim,
        aiohttp.ClientSession() as http,
        http.get(f"{sim.base_url}/_admin/time") as reply,
    ):
        assert reply.status == 404
    assert sim.admin.now_ms() > 0  # the Python handle exists either way


async def test_request_counts_tell_accounts_and_public_calls_apart() -> None:
    async with run_simulator(SCENARIO, log_requests=False) as sim:
        main = binance_client(sim.base_url, sim.admin.credentials("main"))
        reader = sim.admin.credentials("main", read_only=True)
        main_reader = binance_client(sim.base_url, reader)
        sub = binance_client(sim.base_url, sim.admin.credentials("sub"))
        try:
            await main.load_markets()
            await main.fetch_balance()
            await main_reader.fetch_balance()
            await sub.fetch_balance()
            await main.fetch_tickers(["BTC/USDT"])
        finally:
            await main.close()
            await main_reader.close()
            await sub.close()
        assert sim.admin.request_counts("main") == {"spot.account": 2}
        assert sim.admin.request_counts_of_key(reader.api_key) == {"spot.account": 1}
        assert sim.admin.request_counts(None) == {"spot.exchangeInfo": 3, "spot.ticker.24hr": 1}
        assert sim.admin.request_counts()["spot.account"] == 3
        sim.admin.reset_request_counts()
        assert sim.admin.request_counts() == {}
        assert sim.admin.traded_notional() == 0
