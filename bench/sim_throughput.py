"""Signed requests per second the simulator serves on loopback, beside a floor.

The floor is a bare aiohttp server that only verifies the HMAC signature of each request and
answers a minimal account; the simulator serves the same signed `GET /api/v3/account` with its
whole pipeline (weights, faults, auth, engine, JSON). Each is loaded by the same client, in a
separate process so that client and server do not share a core: once with raw aiohttp
requests signed by hand, once through ccxt's `fetch_balance`. Printed: requests per second of
each, the floor's, and the ratio. Then a simulator holding 1,000 accounts is loaded with the raw
client turning over all 1,000 API keys, beside the same simulator loaded through one key (its
floor in the same run), with the ratio and the simulator's start-up time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import multiprocessing
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
from aiohttp import web

from bot.exchange.local import local_api_urls
from rebalance_sim.auth import sign_bitget
from rebalance_sim.server import run_simulator

SECONDS = 3.0
CONNECTIONS = 16
SCENARIO: dict[str, Any] = {
    "clock": {"mode": "realtime"},
    "rate_limits": {"spot_weight_per_minute": 1_000_000_000, "bitget_scale": 1_000_000.0},
    "accounts": [
        {"name": "bench", "spot": {"USDT": "10000", "BTC": "1", "ETH": "10"}},
        {
            "name": "bench-bitget",
            "venue": "bitget",
            "spot": {"USDT": "10000", "BTC": "1", "ETH": "10"},
        },
    ],
}
BITGET_PATH = "/api/v2/spot/account/assets"
ACCOUNTS = 1000


# -- load clients (run in a child process) ----------------------------------------------------


async def _raw_load(base_url: str, key: str, secret: str, seconds: float) -> tuple[int, int]:
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    ok = failed = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector, headers={"X-MBX-APIKEY": key}) as http:

        async def worker() -> None:
            nonlocal ok, failed
            while time.monotonic() < deadline:
                query = f"timestamp={int(time.time() * 1000)}&recvWindow=10000"
                signer = mac.copy()
                signer.update(query.encode())
                url = f"{base_url}/api/v3/account?{query}&signature={signer.hexdigest()}"
                async with http.get(url) as reply:
                    await reply.read()
                    if reply.status == 200:
                        ok += 1
                    else:
                        failed += 1

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return ok, failed


async def _raw_keys_load(
    base_url: str, keys: list[tuple[str, str]], seconds: float
) -> tuple[int, int]:
    """Like `_raw_load`, each request signed with the next of many keys."""
    macs = [(key, hmac.new(secret.encode(), digestmod=hashlib.sha256)) for key, secret in keys]
    ok = failed = turn = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            nonlocal ok, failed, turn
            while time.monotonic() < deadline:
                key, mac = macs[turn % len(macs)]
                turn += 1
                query = f"timestamp={int(time.time() * 1000)}&recvWindow=10000"
                signer = mac.copy()
                signer.update(query.encode())
                url = f"{base_url}/api/v3/account?{query}&signature={signer.hexdigest()}"
                async with http.get(url, headers={"X-MBX-APIKEY": key}) as reply:
                    await reply.read()
                    if reply.status == 200:
                        ok += 1
                    else:
                        failed += 1

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return ok, failed


async def _raw_bitget_load(
    base_url: str, key: str, secret: str, seconds: float, passphrase: str = ""
) -> tuple[int, int]:
    ok = failed = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            nonlocal ok, failed
            while time.monotonic() < deadline:
                stamp = str(int(time.time() * 1000))
                headers = {
                    "ACCESS-KEY": key,
                    "ACCESS-SIGN": sign_bitget(secret, stamp, "GET", BITGET_PATH, ""),
                    "ACCESS-TIMESTAMP": stamp,
                    "ACCESS-PASSPHRASE": passphrase,
                }
                async with http.get(f"{base_url}/bitget{BITGET_PATH}", headers=headers) as reply:
                    await reply.read()
                    if reply.status == 200:
                        ok += 1
                    else:
                        failed += 1

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return ok, failed


async def _ccxt_load(base_url: str, key: str, secret: str, seconds: float) -> tuple[int, int]:
    exchange = ccxt.binance(
        {
            "apiKey": key,
            "secret": secret,
            "enableRateLimit": False,
            "options": {"fetchCurrencies": False, "fetchMargins": False},
        }
    )
    exchange.urls["api"] = local_api_urls("binance", base_url)
    exchange.timeout_on_exit = 0
    exchange.markets = {}  # fetch_balance needs no market data
    ok = failed = 0
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal ok, failed
        while time.monotonic() < deadline:
            try:
                await exchange.fetch_balance()
                ok += 1
            except ccxt.BaseError:
                failed += 1

    try:
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    finally:
        await exchange.close()
    return ok, failed


def _client_process(
    kind: str, base_url: str, key: str, secret: str, seconds: float, results: Any, extra: Any
) -> None:
    if kind == "raw-keys":
        results.put(asyncio.run(_raw_keys_load(base_url, extra, seconds)))
        return
    if kind == "raw-bitget":
        results.put(asyncio.run(_raw_bitget_load(base_url, key, secret, seconds, extra)))
        return
    load = _raw_load if kind == "raw" else _ccxt_load
    results.put(asyncio.run(load(base_url, key, secret, seconds)))


async def _measure(
    kind: str, base_url: str, key: str, secret: str, extra: Any = ""
) -> tuple[float, int]:
    """Requests per second served to one client process, and how many failed."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(
        target=_client_process, args=(kind, base_url, key, secret, SECONDS, results, extra)
    )
    process.start()
    loop = asyncio.get_running_loop()
    ok, failed = await loop.run_in_executor(None, results.get)
    await loop.run_in_executor(None, process.join)
    return ok / SECONDS, failed


# -- servers ---------------------------------------------------------------------------------


@asynccontextmanager
async def _floor_server(key: str, secret: str) -> AsyncIterator[str]:
    """The least a signed endpoint must do: check the key and the HMAC, answer JSON."""
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    body = b'{"updateTime":0,"balances":[{"asset":"USDT","free":"1.0","locked":"0.0"}]}'

    async def account(request: web.Request) -> web.Response:
        if request.headers.get("X-MBX-APIKEY") != key:
            return web.Response(status=401)
        signed, _, signature = request.rel_url.raw_query_string.rpartition("&signature=")
        check = mac.copy()
        check.update(signed.encode())
        if not hmac.compare_digest(check.hexdigest(), signature):
            return web.Response(status=400)
        return web.Response(body=body, content_type="application/json")

    async def bitget_assets(request: web.Request) -> web.Response:
        headers = request.headers
        if headers.get("ACCESS-KEY") != key:
            return web.Response(status=401)
        expected = sign_bitget(secret, headers.get("ACCESS-TIMESTAMP", ""), "GET", BITGET_PATH, "")
        if not hmac.compare_digest(expected, headers.get("ACCESS-SIGN", "")):
            return web.Response(status=400)
        return web.Response(body=bitget_body, content_type="application/json")

    bitget_body = (
        b'{"code":"00000","msg":"success","requestTime":0,"data":[{"coin":"USDT",'
        b'"available":"1.0","frozen":"0","locked":"0","limitAvailable":"0","uTime":"0"}]}'
    )
    app = web.Application()
    app.router.add_get("/api/v3/account", account)
    app.router.add_get(f"/bitget{BITGET_PATH}", bitget_assets)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _run() -> list[tuple[str, float, float, int]]:
    rows: list[tuple[str, float, float, int]] = []
    async with run_simulator(SCENARIO, seed=7, log_requests=False) as sim:
        credentials = sim.admin.credentials("bench")
        key, secret = credentials.api_key, credentials.secret.get_secret_value()
        async with _floor_server(key, secret) as floor_url:
            for kind in ("raw", "ccxt"):
                served, failed = await _measure(kind, sim.base_url, key, secret)
                floor, _ = await _measure(kind, floor_url, key, secret)
                rows.append((kind, served, floor, failed))
        bitget = sim.admin.credentials("bench-bitget")
        key, secret = bitget.api_key, bitget.secret.get_secret_value()
        passphrase = bitget.passphrase.get_secret_value() if bitget.passphrase else ""
        async with _floor_server(key, secret) as floor_url:
            served, failed = await _measure("raw-bitget", sim.base_url, key, secret, passphrase)
            floor, _ = await _measure("raw-bitget", floor_url, key, secret, passphrase)
            rows.append(("raw-bitget", served, floor, failed))
    return rows


async def _many_accounts() -> tuple[float, float, float, int]:
    """Req/s over 1,000 keys, req/s through one key of the same simulator, start-up seconds."""
    scenario = {
        **SCENARIO,
        "accounts": [
            {"name": f"acct{i:04d}", "spot": {"USDT": "10000", "BTC": "1"}} for i in range(ACCOUNTS)
        ],
    }
    started = time.perf_counter()
    async with run_simulator(scenario, seed=7, log_requests=False) as sim:
        startup = time.perf_counter() - started
        keys = []
        for i in range(ACCOUNTS):
            credentials = sim.admin.credentials(f"acct{i:04d}")
            keys.append((credentials.api_key, credentials.secret.get_secret_value()))
        served, failed = await _measure("raw-keys", sim.base_url, "", "", keys)
        one, _ = await _measure("raw", sim.base_url, *keys[0])
    return served, one, startup, failed


def main() -> None:
    rows = asyncio.run(_run())
    print(
        f"   signed GET /api/v3/account (Binance), {BITGET_PATH} (Bitget), {CONNECTIONS} "
        f"connections, {SECONDS:.0f} s per run, client in its own process"
    )
    labels: dict[str, str] = {
        "raw": "Binance, raw client",
        "ccxt": "Binance, ccxt",
        "raw-bitget": "Bitget, raw client",
    }
    for kind, served, floor, failed in rows:
        errors = f", {failed} failed" if failed else ""
        print(
            f"   {labels[kind]:<20} simulator {served:8,.0f} req/s   floor {floor:8,.0f} req/s"
            f"   ratio {served / floor:.2f}{errors}"
        )
    raw = rows[0][1]
    verdict = "met" if raw >= 2000 else "NOT met"
    print(f"   target >= 2,000 signed req/s with the raw client: {verdict} ({raw:,.0f})")
    served, one, startup, failed = asyncio.run(_many_accounts())
    errors = f", {failed} failed" if failed else ""
    print(
        f"   {ACCOUNTS:,} accounts, raw client turning over every key: {served:8,.0f} req/s   "
        f"one key of the same simulator {one:8,.0f} req/s   ratio {served / one:.2f}   "
        f"start-up {startup:.2f} s{errors}"
    )
