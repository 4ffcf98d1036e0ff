"""What every dialect's handler sees of a request: its parameters and the key that signed it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rebalance_sim.auth import ApiKey


@dataclass(slots=True)
class Call:
    """One request as a handler sees it: query parameters (GET) or the body's fields (POST)."""

    params: dict[str, str]
    key: ApiKey | None
    fill_fraction: Decimal | None = None  # a partial-fill fault asks for this share now

    @property
    def account(self) -> str:
        assert self.key is not None, "only signed endpoints ask for the account"
        return self.key.account


Handler = Callable[[Call], Any]
