"""Operations of a process running several portfolios: one status server over all of them.

Each portfolio keeps its own `Health`, `Metrics`, notifier and status (`Operations`, once its
start succeeded); this module only puts them side by side. `/healthz` is healthy when every
portfolio is, and otherwise names each failing portfolio with its reason; `/metrics` serves
every portfolio's series, told apart by their `portfolio` label; `/status` lists each
portfolio's status. A portfolio that has not started (its keys refused, its venue down) has a
health of its own that says why, and no series. `/history`, `POST /halt` and `POST /resume`
address one portfolio, named by `?portfolio=NAME` (the token guards the writes as for one
portfolio); a portfolio's audit log is read for its history only when someone asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from bot.ops.health import Health
from bot.ops.history import Window
from bot.ops.operations import Operations
from bot.ops.view import HistoryView


class FleetHealth:
    """Every portfolio's health; healthy only when each is."""

    def __init__(self, members: Mapping[str, Health]) -> None:
        self.members = members

    def _each(self, probe: Callable[[Health], tuple[bool, str]]) -> tuple[bool, str]:
        failing = []
        for name, health in self.members.items():
            ok, reason = probe(health)
            if not ok:
                failing.append(f"{name}: {reason}")
        if failing:
            return False, f"{len(failing)} of {len(self.members)} unhealthy: " + "; ".join(failing)
        return True, f"ok: {len(self.members)} portfolios"

    def check(self, now: datetime) -> tuple[bool, str]:
        return self._each(lambda h: h.check(now))

    def alive(self, now: datetime) -> tuple[bool, str]:
        return self._each(lambda h: h.alive(now))

    def ready(self) -> tuple[bool, str]:
        return self._each(lambda h: h.ready())


class _Merged:
    """A collector yielding every member registry's families, one family per metric name."""

    def __init__(self, registries: Callable[[], list[CollectorRegistry]]) -> None:
        self._registries = registries

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for registry in self._registries():
            for family in registry.collect():
                merged = families.get(family.name)
                if merged is None:
                    merged = Metric(family.name, family.documentation, family.type, family.unit)
                    families[family.name] = merged
                merged.samples.extend(family.samples)
        yield from families.values()


class FleetMetrics:
    """The series of every started portfolio, as one exposition."""

    def __init__(self, members: Callable[[], Mapping[str, Operations]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(
            _Merged(lambda: [ops.metrics.registry for ops in members().values()])
        )

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


def fleet_status(
    names: list[str],
    members: Mapping[str, Operations],
    health: Mapping[str, Health],
    now: datetime,
    only: str | None = None,
) -> dict[str, Any]:
    """Each portfolio's status (or, not started, its name and why), in the config's order;
    with `only` (`/status?portfolio=NAME`), that portfolio's alone."""
    if only is not None and only not in names:
        raise LookupError(f"no portfolio {only!r} in this process")
    rows: list[dict[str, Any]] = []
    for name in names if only is None else [only]:
        ok, reason = health[name].check(now)
        ops = members.get(name)
        row = dict(ops.status()) if ops is not None else {"portfolio": name, "started": False}
        row["health"] = {"ok": ok, "reason": reason}
        rows.append(row)
    return rows[0] if only is not None else {"portfolios": rows}


class FleetActions:
    """`/history`, `/halt` and `/resume` of the portfolio a request names (`?portfolio=`;
    may be left out when the process runs only one)."""

    def __init__(self, names: list[str], members: Callable[[], Mapping[str, Operations]]) -> None:
        self._names = names
        self._members = members

    def _one(self, portfolio: str | None) -> Operations:
        if portfolio is None:
            if len(self._names) != 1:
                raise LookupError(
                    f"name the portfolio: ?portfolio=NAME ({len(self._names)} in this process)"
                )
            portfolio = self._names[0]
        if portfolio not in self._names:
            raise LookupError(f"no portfolio {portfolio!r} in this process")
        ops = self._members().get(portfolio)
        if ops is None:
            raise LookupError(f"portfolio {portfolio!r} has not started (see /healthz)")
        return ops

    async def history(self, window: Window, portfolio: str | None) -> HistoryView:
        return await self._one(portfolio).history_when_asked(window)

    async def halt(self, reason: str, portfolio: str | None) -> None:
        await self._one(portfolio).halt(reason)

    async def resume(self, reason: str, portfolio: str | None) -> None:
        await self._one(portfolio).resume(reason)
