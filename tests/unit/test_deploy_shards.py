"""Portfolio shards on Kubernetes (deploy/k8s/shards/*), checked offline.

Each shard is one pod running the portfolios its ConfigMap lists. What must hold: one writer
per portfolio (a single replica, strategy Recreate, every portfolio in exactly one shard, its
lock on the shard's own volume); keys only from a Secret (files of a secret volume, or
secretKeyRef), never a literal; probes on the bot's own health endpoints; and each shard's
config loads with the secrets its pod is given, every account of every portfolio keyed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bot.core.domain import Mode
from bot.portfolios import load_portfolios

REPO = Path(__file__).resolve().parents[2]
SHARDS_DIR = REPO / "deploy" / "k8s" / "shards"
SHARDS = sorted(p.name for p in SHARDS_DIR.iterdir() if p.is_dir())
KUBECTL = shutil.which("kubectl")
SECRET_WORDS = ("KEY", "SECRET", "PASSWORD", "TOKEN", "URLS", "PASSPHRASE")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _render(shard: str) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "kustomize", str(SHARDS_DIR / shard)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _patched_container(shard: str) -> dict[str, Any]:
    """The shard's patch of the bot container (where its keys are named)."""
    patch = _yaml(SHARDS_DIR / shard / "keys.yaml")
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _env_with_secret_files(container: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    """The container's environment, each `*_FILE` pointing at a stand-in file."""
    env: dict[str, str] = {}
    for variable in container.get("env", []):
        value = variable.get("value")
        if value is None:
            continue
        if variable["name"].endswith("_FILE"):
            secret = tmp_path / Path(value).name
            secret.write_text(f"x-{secret.name}", encoding="utf-8")
            value = str(secret)
        env[variable["name"]] = value
    return env


def _portfolios(shard: str, tmp_path: Path) -> list[str]:
    tmp_path.mkdir()
    env = _env_with_secret_files(_patched_container(shard), tmp_path)
    loaded = load_portfolios(SHARDS_DIR / shard / "bot.toml", env=env)
    for config in loaded.configs:
        for name, account in config.accounts.items():
            assert account.has_credentials, f"{shard}: {config.portfolio}.{name} gets no keys"
        assert config.data_dir == Path("/data") / config.portfolio
        assert config.mode is Mode.DRY_RUN
    return loaded.names


def test_there_are_shards_and_no_portfolio_runs_in_two(tmp_path: Path) -> None:
    assert len(SHARDS) >= 2
    seen: dict[str, str] = {}
    for shard in SHARDS:
        names = _portfolios(shard, tmp_path / shard)
        assert names, f"{shard} lists no portfolio"
        for name in names:
            assert name not in seen, f"portfolio {name} in {seen.get(name)} and {shard}"
            seen[name] = shard


@pytest.mark.parametrize("shard", SHARDS)
def test_keys_come_only_from_a_secret(shard: str) -> None:
    """Every variable that carries a secret is a file of a secret volume (`*_FILE`) or a
    secretKeyRef; no value in the patch is a secret literal."""
    container = _patched_container(shard)
    pod = _yaml(SHARDS_DIR / shard / "keys.yaml")["spec"]["template"]["spec"]
    secret_volumes = {v["name"] for v in pod["volumes"] if "secret" in v}
    assert secret_volumes, f"{shard}: no secret volume"
    base = _yaml(REPO / "deploy" / "k8s" / "base" / "deployment.yaml")
    (base_container,) = base["spec"]["template"]["spec"]["containers"]
    secret_mounts = [
        m["mountPath"] for m in base_container["volumeMounts"] if m["name"] in secret_volumes
    ]
    for variable in container["env"]:
        name = variable["name"]
        if "valueFrom" in variable:
            assert set(variable["valueFrom"]) == {"secretKeyRef"}, name
            continue
        if not any(word in name.upper() for word in SECRET_WORDS):
            continue
        assert name.endswith("_FILE"), f"{shard}: {name} holds a secret literal"
        assert any(variable["value"].startswith(m + "/") for m in secret_mounts), (
            f"{shard}: {name} is not a file of a secret volume"
        )


@needs_kubectl
@pytest.mark.parametrize("shard", SHARDS)
def test_a_shard_is_one_replica_recreated_with_probes_on_the_bot_health(shard: str) -> None:
    docs = _render(shard)
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30", strict=True)
    assert sorted(d["kind"] for d in docs) == [
        "ConfigMap",
        "Deployment",
        "PersistentVolumeClaim",
        "Service",
    ]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "--live" not in container["args"]
    # The config the pod runs is the ConfigMap listing the shard's portfolios.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    config_volume = volumes[mounts["/etc/rebalance-bot"]]
    assert config_volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert config_map["data"]["bot.toml"] == (SHARDS_DIR / shard / "bot.toml").read_text()
    config_path = container["args"][container["args"].index("--config") + 1]
    assert config_path == "/etc/rebalance-bot/bot.toml"
    # Every portfolio's state and lock live on the shard's own volume.
    pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    data_volume = volumes[mounts["/data"]]
    assert data_volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]


@needs_kubectl
def test_shards_share_no_name_volume_or_selector() -> None:
    rendered = [doc for shard in SHARDS for doc in _render(shard)]
    names = [(d["kind"], d["metadata"]["name"]) for d in rendered]
    assert len(names) == len(set(names))
    selectors = [
        tuple(sorted(d["spec"]["selector"].items())) for d in rendered if d["kind"] == "Service"
    ]
    assert len(selectors) == len(set(selectors))
