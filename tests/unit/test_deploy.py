"""deploy/, the Dockerfile and the lock, checked offline.

Kubernetes manifests are rendered with `kubectl kustomize` (when kubectl is installed) and
every object is validated against the Kubernetes JSON schemas that the kubernetes-validate
package ships; compose, Prometheus and Grafana files are parsed and their cross-references
checked; every metric a dashboard or an alert queries must be one the bot exports.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version
from prometheus_client.parser import text_string_to_metric_families

from bot.config import load_config
from bot.core.domain import Mode, SleeveDrift
from bot.ops.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S_VERSION = "1.30"
OVERLAYS = sorted(p.name for p in (DEPLOY / "k8s" / "overlays").iterdir() if p.is_dir())
KUBECTL = shutil.which("kubectl")
METRIC = re.compile(r"\brebalance_[a-z_]+\b")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _exported_metric_names() -> set[str]:
    """Every sample name a bot exports once each kind of event has happened."""
    metrics = Metrics("p")
    metrics.observe_cycle(1.0, "traded")
    metrics.set_nav(Decimal(1))
    metrics.set_sleeves(
        [SleeveDrift("s", Decimal(1), Decimal("0.5"), Decimal("0.6"), Decimal("0.05"))]
    )
    metrics.count_trigger("absolute-band", True)
    metrics.count_order("filled")
    metrics.add_fee("USDT", Decimal(1))
    metrics.add_fee("BNB", Decimal(-1))
    metrics.add_turnover(Decimal(1))
    metrics.count_exchange_error("ExchangeUnavailable")
    metrics.set_rate_limit_weight("spot", 1)
    body, _ = metrics.exposition()
    return {
        sample.name
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


# -- Dockerfile, .dockerignore and the lock ------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_is_multi_stage_slim_non_root_with_exec_form_entrypoint() -> None:
    instructions = _dockerfile()
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) >= 2 and all(re.match(r"python:3\.1[1-9]-slim\b", f) for f in froms)
    final = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    final_keys = dict(final)
    user = final_keys["USER"].split(":")[0]
    assert user.isdigit() and int(user) > 0, "a numeric non-root user (k8s runAsNonRoot checks it)"
    assert json.loads(final_keys["ENTRYPOINT"]) == ["rebalance-bot"]
    assert json.loads(final_keys["CMD"]) == ["run", "--config", "config/paper.toml"]
    assert json.loads(final_keys["VOLUME"]) == ["/data"]
    assert "/healthz" in final_keys["HEALTHCHECK"] and "curl" not in final_keys["HEALTHCHECK"]
    assert not any(k == "COPY" and re.search(r"--from=\S*[:/]", r) for k, r in instructions)
    assert (REPO / "config" / "paper.toml").is_file()


def test_dockerfile_environment_names_real_config_fields() -> None:
    env: dict[str, str] = {}
    for keyword, rest in _dockerfile():
        if keyword == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    bot_env = {k: v for k, v in env.items() if k.startswith("REBALANCE_")}

    config = load_config(REPO / "config" / "paper.toml", env=bot_env)

    assert config.data_dir == Path("/data")
    assert config.server.host == "0.0.0.0"
    assert config.server.port == 8080
    assert config.mode is Mode.DRY_RUN


def test_dockerignore_lets_through_exactly_what_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allow-list: nothing reaches the build unless named"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = set()
    for keyword, rest in _dockerfile():
        if keyword == "COPY" and "--from=" not in rest:
            copied.update(rest.split()[:-1])
    assert copied <= allowed
    for name in allowed:
        assert (REPO / name).exists(), name


def test_lock_pins_every_dependency_with_hashes_within_the_declared_bounds() -> None:
    declared = [
        Requirement(r)
        for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    ]
    pins: dict[str, Version] = {}
    text = (DEPLOY / "requirements.lock").read_text(encoding="utf-8")
    for block in re.split(r"\n(?=[a-z0-9])", text):
        match = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", block)
        if match:
            assert "--hash=sha256:" in block, f"{match.group(1)} has no hash"
            pins.setdefault(match.group(1).lower().replace("_", "-"), Version(match.group(2)))
    for requirement in declared:
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is in pyproject.toml but not in deploy/requirements.lock"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]}"


# -- compose, Prometheus, Grafana -------------------------------------------------------------


def test_compose_runs_the_bot_with_prometheus_and_grafana_on_loopback_only() -> None:
    compose = _yaml(DEPLOY / "compose.yaml")
    services = compose["services"]
    assert set(services) == {"bot", "prometheus", "grafana"}

    bot = services["bot"]
    assert (DEPLOY / bot["build"]["context"] / bot["build"]["dockerfile"]).is_file()
    assert bot["read_only"] is True and "/tmp" in bot["tmpfs"]
    assert any(v.endswith(":/data") for v in bot["volumes"])
    assert bot["stop_signal"] == "SIGTERM"
    assert "/healthz" in " ".join(bot["healthcheck"]["test"])
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert set(compose["volumes"]) == {n for n in named if not n.startswith(".")}


def test_prometheus_scrapes_the_bot_service_and_loads_the_alerts() -> None:
    compose = _yaml(DEPLOY / "compose.yaml")
    prometheus = _yaml(DEPLOY / "prometheus" / "prometheus.yml")

    (job,) = prometheus["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["bot:8080"]
    mounts = dict(v.split(":")[:2] for v in compose["services"]["prometheus"]["volumes"])
    assert mounts["./prometheus/alerts.yml"] in prometheus["rule_files"]


def test_grafana_provisions_the_prometheus_datasource_and_the_dashboard() -> None:
    compose = _yaml(DEPLOY / "compose.yaml")
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    datasource = _yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yaml")
    provider = _yaml(DEPLOY / "grafana/provisioning/dashboards/rebalance-bot.yaml")
    dashboard = json.loads((DEPLOY / "grafana/dashboards/rebalance-bot.json").read_text())

    (source,) = datasource["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    assert provider["providers"][0]["options"]["path"] == mounts["./grafana/dashboards"]
    uids = {panel["datasource"]["uid"] for panel in dashboard["panels"] if "datasource" in panel}
    assert uids == {source["uid"]}
    titles = " | ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for topic in ("nav", "allocation vs target", "drift vs band", "orders", "errors"):
        assert topic in titles


def _queries(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in ("expr", "definition") and isinstance(v, str)]
        query = node.get("query")
        if isinstance(query, str):
            found.append(query)
        return found + [q for v in node.values() for q in _queries(v)]
    if isinstance(node, list):
        return [q for v in node for q in _queries(v)]
    return []


def test_every_metric_the_dashboard_and_alerts_query_is_exported() -> None:
    exported = _exported_metric_names()
    dashboard = json.loads((DEPLOY / "grafana/dashboards/rebalance-bot.json").read_text())
    alerts = _yaml(DEPLOY / "prometheus" / "alerts.yml")

    queries = _queries(dashboard) + _queries(alerts)
    used = {name for query in queries for name in METRIC.findall(query)}

    assert len(used) >= 10, "the dashboard queries the bot's metrics"
    assert used - exported == set()


# -- Kubernetes -------------------------------------------------------------------------------


def _render(overlay: str) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _validate(doc: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise AssertionError(f"{doc['kind']} {doc['metadata']['name']}: {exc.message}") from None


def test_base_manifests_validate_against_the_schemas() -> None:
    base = DEPLOY / "k8s" / "base"
    kustomization = _yaml(base / "kustomization.yaml")
    for name in kustomization["resources"]:
        _validate(_yaml(base / name))


def test_no_secret_manifest_is_in_the_tree() -> None:
    """Applying the tree must never overwrite real keys: Secrets are created by hand."""
    for path in DEPLOY.rglob("*.y*ml"):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert not (isinstance(doc, dict) and doc.get("kind") == "Secret"), path


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed: overlays not rendered")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_valid_objects_for_one_single_replica_bot(overlay: str) -> None:
    docs = _render(overlay)
    for doc in docs:
        _validate(doc)
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Service"]

    deployment = next(d for d in docs if d["kind"] == "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert "emptyDir" in volumes[mounts["/tmp"]]
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    assert (
        volumes[mounts["/etc/rebalance-bot"]]["configMap"]["name"] == config_map["metadata"]["name"]
    )

    service = next(d for d in docs if d["kind"] == "Service")
    labels = spec["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["selector"]["app.kubernetes.io/instance"] == overlay


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed: overlays not rendered")
def test_portfolios_scale_out_without_sharing_a_name_a_volume_or_a_selector() -> None:
    rendered = {overlay: _render(overlay) for overlay in OVERLAYS}
    assert len(rendered) >= 2
    names = [
        (d["kind"], d["metadata"]["namespace"], d["metadata"]["name"])
        for docs in rendered.values()
        for d in docs
    ]
    assert len(names) == len(set(names))
    selectors = [
        json.dumps(d["spec"]["selector"], sort_keys=True)
        for docs in rendered.values()
        for d in docs
        if d["kind"] == "Service"
    ]
    assert len(selectors) == len(set(selectors))


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed: overlays not rendered")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_config_loads_with_the_secrets_its_pod_is_given(
    overlay: str, tmp_path: Path
) -> None:
    docs = _render(overlay)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for variable in container["env"]:
        value = variable["value"]
        if variable["name"].endswith("_FILE"):
            secret = tmp_path / Path(value).name
            secret.write_text(
                '["json://127.0.0.1:9/"]' if "URLS" in variable["name"] else f"x-{secret.name}"
            )
            value = str(secret)
        env[variable["name"]] = value
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    config_file = tmp_path / "bot.toml"
    config_file.write_text(config_map["data"]["bot.toml"])

    config = load_config(config_file, env=env)

    assert config.portfolio == overlay
    assert config.data_dir == Path("/data")
    assert config.server.host == "0.0.0.0"
    live = "--live" in container["args"]
    assert (config.mode is Mode.LIVE) == live
    for name, account in config.accounts.items():
        assert account.has_credentials, f"{overlay}: account {name} gets no keys"
    if live:
        assert config.server.token is not None


def test_base_config_is_a_valid_paper_portfolio_using_the_image_scenario() -> None:
    config = load_config(DEPLOY / "k8s" / "base" / "bot.toml", env={})

    assert config.mode is Mode.DRY_RUN
    assert config.simulator.enabled
    scenario = config.simulator.scenario
    assert scenario is not None
    assert scenario.relative_to("/app") == Path("config/sim/paper.toml")
    assert (REPO / "config" / "sim" / "paper.toml").is_file()


# -- systemd ----------------------------------------------------------------------------------


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit's sections; a key may repeat (Environment=), so each maps to a list."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        sections[section][key.strip()].append(value.strip())
    return sections


def test_systemd_unit_runs_the_daemon_hardened_with_a_clean_stop() -> None:
    path = DEPLOY / "systemd" / "rebalance-bot.service"
    unit = _unit(path)

    service = {k: v[-1] for k, v in unit["Service"].items()}
    assert " run --config " in service["ExecStart"]
    assert "--live" not in service["ExecStart"]
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) >= 30
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"
    assert service["DynamicUser"] == "yes" and service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["StateDirectory"] == "rebalance-bot"
    environment = unit["Service"]["Environment"]
    assert "REBALANCE_DATA_DIR=%S/rebalance-bot" in environment
    assert "REBALANCE_SERVER__HOST=127.0.0.1" in environment
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]

    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        result = subprocess.run(
            [analyze, "verify", str(path)], capture_output=True, text=True, timeout=60, check=False
        )
        problems = [
            line
            for line in (result.stdout + result.stderr).splitlines()
            if line.strip() and "is not executable: No such file or directory" not in line
        ]
        assert problems == []
