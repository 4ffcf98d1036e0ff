"""A live start-up loads nothing of the simulator: the live path is free of it.

The bot runs as its own process against a simulator served by this test; after one live cycle
(a real one: markets loaded, balances read, orders possibly sent) the process lists the modules
it has loaded. None may belong to `rebalance_sim` or be the bot's door to it, `bot.simulator`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.main import main
from rebalance_sim.server import run_simulator
from tests.integration.test_daemon_process import REPO, SCENARIO, _config, _env

PROBE = """
import json, sys
from bot.cli.main import main
code = main(["once", "--config", sys.argv[1], "--live"])
sim = [m for m in sys.modules if m.split(".")[0] == "rebalance_sim" or m == "bot.simulator"]
loaded = sorted(sim)
print(json.dumps({"code": code, "loaded": loaded}))
"""


async def test_a_live_start_imports_no_simulator_module(tmp_path: Path) -> None:
    async with run_simulator(SCENARIO, seed=11) as sim:
        config = _config(tmp_path, sim.base_url)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            PROBE,
            str(config),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_env(tmp_path),
            cwd=tmp_path,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["code"] == 0, err.decode()
    assert result["loaded"] == []


def test_the_same_probe_sees_the_simulator_in_paper_mode(tmp_path: Path) -> None:
    """The probe can fail: a paper config embeds the simulator, and the probe sees it."""
    config_dir = REPO / "config"
    text = (config_dir / "paper.toml").read_text(encoding="utf-8")
    scenario = config_dir / "sim" / "paper.toml"
    text = text.replace('scenario = "sim/paper.toml"', f'scenario = "{scenario}"')
    config = tmp_path / "paper.toml"
    config.write_text(text, encoding="utf-8")
    probe = PROBE.replace('"--live"', '"--data-dir", sys.argv[2]')
    args = [sys.executable, "-c", probe, str(config), str(tmp_path / "data")]
    env = _env(tmp_path)
    done = subprocess.run(
        args, check=False, capture_output=True, env=env, cwd=tmp_path, timeout=120
    )
    result = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr.decode()
    assert "bot.simulator" in result["loaded"]
    assert "rebalance_sim.server" in result["loaded"]


def test_a_broken_simulator_scenario_is_a_config_error_through_the_door(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (REPO / "config" / "paper.toml").read_text(encoding="utf-8")
    broken = tmp_path / "broken-scenario.toml"
    broken.write_text("[clock]\nmode = 'warp'\n", encoding="utf-8")
    text = text.replace('scenario = "sim/paper.toml"', f'scenario = "{broken}"')
    config = tmp_path / "paper.toml"
    config.write_text(text, encoding="utf-8")
    code = main(["once", "--config", str(config), "--data-dir", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert code == 2
    assert "clock.mode" in err
    assert len(err.strip().splitlines()) == 1
