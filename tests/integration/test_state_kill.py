"""SIGKILL at random moments never loses a saved intent, never corrupts the store, never
leaves the portfolio locked.

A child process opens the store and writes in a loop (intent saved, marked sent, settled, a
fill, a paper trade), printing each client order id on stdout only after the call returned.
The parent kills it with SIGKILL at a seeded random moment, then reopens the same store and
checks it against what the child reported. Some kills land before the child has finished
opening the store (interpreter start, import, migration).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.core.domain import IntentState
from bot.store.state import StateStore

REPO = Path(__file__).resolve().parents[2]
RUNS = 20
SEED = 20260101

WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from decimal import Decimal
    from pathlib import Path
    from bot.core.domain import InstrumentKey, Intent, IntentState, Leg, Side
    from bot.store.state import StateStore

    data_dir, run = Path(sys.argv[1]), sys.argv[2]
    store = StateStore.open(data_dir, "main", lambda: datetime.now(UTC))
    print("ready", flush=True)
    key = InstrumentKey("spot", "BTC/USDT")
    for i in range(1_000_000):
        cid = f"{run}-{i:06d}"
        leg = Leg(i % 1000, "core", key, Side.BUY, Decimal("0.00000001") * (i + 1), Decimal("1.5"))
        store.save_intent(Intent(cid, "20260101T120000000", leg))
        print("saved", cid, flush=True)
        store.mark_sent(cid, datetime.now(UTC))
        print("sent", cid, flush=True)
        if i % 2:
            store.update_intent(cid, state=IntentState.FILLED, filled=leg.amount, fee=Decimal("0"))
            now = datetime.now(UTC)
            store.record_fill(cid, f"t{i}", leg.amount, leg.price, Decimal("0"), None, now)
            print("filled", cid, flush=True)
        if i % 5 == 0:
            store.commit_paper_trade({"run": run, "i": i}, [{"cid": cid}, {"cid": cid + "b"}])
    """
)


def _wait_for_ready(out: Path, proc: subprocess.Popen[bytes], limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while b"ready\n" not in out.read_bytes():
        assert proc.poll() is None, f"writer died on its own: {out.read_text()}"
        assert time.monotonic() < deadline, "writer never opened the store"
        time.sleep(0.005)


def _reported(out: Path) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {"saved": set(), "sent": set(), "filled": set()}
    for line in out.read_text().splitlines():
        word, _, cid = line.partition(" ")
        if word in seen and cid:
            seen[word].add(cid)
    return seen


def test_sigkill_at_random_points_keeps_every_saved_intent_and_a_sound_store(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    data_dir = tmp_path / "data"
    saved_so_far: set[str] = set()
    kills_before_ready = 0
    for run in range(RUNS):
        out = tmp_path / f"run{run}.out"
        # the interpreter needs well over 10 ms to start, so run 0 dies before it opens
        early = run == 0 or rng.random() < 0.2
        delay = 0.01 if run == 0 else rng.uniform(0.0, 0.1 if early else 0.3)
        with out.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-c", WRITER, str(data_dir), f"r{run:02d}"],
                cwd=REPO,
                stdout=sink,
                stderr=subprocess.PIPE,
            )
        try:
            if not early:
                _wait_for_ready(out, proc)
            time.sleep(delay)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, stderr.decode()
        seen = _reported(out)
        kills_before_ready += "ready" not in out.read_text()

        # the kernel released the dead writer's lock: the store opens at once
        with StateStore.open(data_dir, "main", lambda: datetime.now(UTC)) as store:
            assert store.integrity_check() == "ok"
            saved_so_far |= seen["saved"]
            stored = {i.client_order_id: i for i in store.all_intents()}
            assert saved_so_far <= stored.keys(), f"run {run}: lost intents"
            # at most the one intent in flight when the kill came is there unreported
            this_run = {cid for cid in stored if cid.startswith(f"r{run:02d}-")}
            assert len(this_run - seen["saved"]) <= 1
            for cid in seen["sent"]:
                assert stored[cid].state is not IntentState.PENDING
            for cid in seen["filled"]:
                assert stored[cid].state is IntentState.FILLED
                assert [f.trade_id for f in store.fills(cid)] == [f"t{int(cid[-6:])}"]
            # a paper trade is whole: the ledger's last trade has both of its fills
            ledger = store.load_paper_ledger()
            if ledger is not None:
                last = f"{ledger['run']}-{ledger['i']:06d}"
                cids = [f["cid"] for f in store.paper_fills()]
                assert cids[-2:] == [last, last + "b"]
                assert len(cids) % 2 == 0
    assert saved_so_far, "no run got as far as saving an intent"
    assert kills_before_ready >= 1, "no kill landed before the store was open"
