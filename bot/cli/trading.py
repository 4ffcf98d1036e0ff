"""`halt`, `reduce`, `resume`: an operator's request to the portfolio's risk engine.

A stopped portfolio: the command opens its store (taking the lock) and asks the risk engine
there, which changes the stored state and audits it at once. A running daemon (its lock is
held): the command queues the request (`bot.app.control`) and the daemon applies it at the
start of its next cycle, audited; with `--wait N` the command waits up to N seconds and prints
what came of it. A request that cannot take effect changes nothing and says why: `reduce` and
`resume` are refused while a kill switch is engaged (the file `<data_dir>/HALT` or the
variable), and the file is never removed by the command — the operator removes it, then
resumes. A portfolio that never ran in the data directory is refused (a mistyped --data-dir,
or a relative data_dir read from another directory, would otherwise change an empty state
while the bot trades on), but for `halt --new` and `reduce --new`, which create its state so.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bot.app.control import ControlRequest, ControlRequests
from bot.app.risk_engine import RiskEngine
from bot.app.wiring import KillSwitch, utc_now
from bot.audit.layout import open_portfolio_audit, portfolio_audit_dir
from bot.audit.writer import audit_files, open_file
from bot.config import BotConfig
from bot.core.errors import RequestRefused, StateError, UsageError
from bot.core.risk import ChangeSource, OperatorAction, RiskState
from bot.logs import redact, register_secrets
from bot.store.state import StateStore, StoreLocked, running_pid, state_file

POLL_SECONDS = 0.2


def change_trading_state(
    config: BotConfig,
    action: OperatorAction,
    reason: str,
    *,
    wait: float = 0.0,
    new: bool = False,
) -> int:
    """Ask for `action`; 0 when it is done (or queued for the running daemon), 1 refused.
    A portfolio with no state in the data directory is refused (exit 2), but for a halt or a
    reduce with `new`, which creates its state so."""
    register_secrets(config.secrets())
    reason = redact(reason)
    switch = KillSwitch(config.kill_switch_file, config.risk.kill_switch_env, dict(os.environ))
    engaged = switch()
    if action is not OperatorAction.HALT and engaged is not None:
        raise RequestRefused(
            f"cannot {action}: the kill switch is engaged ({engaged}); nothing was changed. "
            "Remove it first (the file by hand, or unset the variable), then run it again"
        )
    if not (new and action is not OperatorAction.RESUME):
        _must_exist(config, action)
    try:
        return _stopped(config, action, reason, switch)
    except StoreLocked:  # a daemon holds the portfolio: it takes the request at its next cycle
        pid = running_pid(config.data_dir, config.portfolio)
    return _running(config, action, reason, pid, wait)


def _must_exist(config: BotConfig, action: OperatorAction) -> None:
    """The portfolio has run in this data directory: a request for a directory where it never
    ran (a mistyped --data-dir, a relative data_dir read from another directory) would change
    a new, empty state while the real one trades on."""
    if state_file(config.data_dir, config.portfolio).is_file():
        return
    hint = (
        f"; to make it start so there, run `{action} --new`"
        if action is not OperatorAction.RESUME
        else ""
    )
    raise UsageError(
        f"portfolio {config.portfolio} has no state in {where(config)}: it never ran there, so "
        f"there is nothing to {action} and nothing was changed (a relative data_dir is read "
        f"from the current directory; check --data-dir){hint}"
    )


def _stopped(config: BotConfig, action: OperatorAction, reason: str, switch: KillSwitch) -> int:
    with (
        StateStore.open(config.data_dir, config.portfolio, utc_now) as store,
        open_portfolio_audit(store, utc_now, redact=redact) as audit,
    ):
        saved = store.load_risk_state()
        try:
            state = RiskState.from_dict(saved) if saved else RiskState()
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"the saved risk state cannot be read: {exc}") from None
        engine = RiskEngine(state, store=store, audit=audit, kill_switch=switch, clock=utc_now)
        before = engine.trading
        after = engine.request(action, reason, ChangeSource.CLI)
    unchanged = " (unchanged)" if after is before else ""
    print(f"trading state: {after}{unchanged} — portfolio {config.portfolio} in {where(config)}")
    return 0


def where(config: BotConfig) -> Path:
    return config.data_dir.resolve()


def _running(
    config: BotConfig, action: OperatorAction, reason: str, pid: int | None, wait: float
) -> int:
    requests = ControlRequests(config.data_dir, config.portfolio)
    request = requests.submit(action, reason, utc_now())
    who = f"the running daemon (pid {pid})" if pid is not None else "the daemon"
    every = config.interval.total_seconds()
    print(f"{action} requested: {who} applies it at its next cycle (one every {every:g} s)")
    if wait <= 0:
        return 0
    outcome = _await_outcome(config, requests, request, wait)
    if outcome is None:
        print(f"not applied within {wait:g} s; it stays queued for the daemon's next cycle")
        return 0
    print(_describe(outcome))
    return 1 if outcome.get("result") == "refused" else 0


def _await_outcome(
    config: BotConfig, requests: ControlRequests, request: ControlRequest, wait: float
) -> dict[str, object] | None:
    deadline = time.monotonic() + wait
    while requests.path(request.id).exists():
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)
    return _audited(portfolio_audit_dir(config.data_dir, config.portfolio), request.id)


def _audited(directory: Path, request_id: str) -> dict[str, object] | None:
    """The `operator_request` record of one request, from the newest files of the log."""
    found = None
    for path in audit_files(directory)[-2:]:
        with open_file(path) as f:
            for raw in f:
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue  # a torn last line
                if (
                    record.get("event") == "operator_request"
                    and record.get("request") == request_id
                ):
                    found = record
    return found


def _describe(record: dict[str, object]) -> str:
    result, state = record.get("result"), record.get("trading_state")
    if result == "refused":
        return f"refused by the daemon: {record.get('detail')}"
    if result == "unchanged":
        return f"trading state: {state} (unchanged)"
    return f"trading state: {state}"
