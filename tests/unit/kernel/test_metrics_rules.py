"""ops/: the alert rules and the Grafana dashboard name only metrics the hub exposes
(``kernel.metrics.METRIC_NAMES``), Prometheus scrapes with the compose file's metrics
token, and (when Prometheus' ``promtool`` is installed) the rules are valid and fire in
``rules_test.yml``'s scenarios."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kernel.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[3]
OPS = ROOT / "ops"
PROMETHEUS_OWN = frozenset({"up"})
"""Series Prometheus itself makes (the scrape's own health)."""
_FUNCTIONS = frozenset({"sum", "max", "min", "rate", "increase", "delta", "by", "time",
                        "histogram_quantile", "le", "offset", "and", "or", "unless"})
_NAME = re.compile(r"\b([a-z_][a-z0-9_]*)\s*(?=[{\[)]|\s*(?:[=<>!]=?|/|\)|$))")


def _alerts() -> list[dict[str, str]]:
    """Each rule of rules.yml as {alert, expr, severity, summary} (a folded ``>-`` expr
    joined), read without a YAML library."""
    out: list[dict[str, str]] = []
    lines = (OPS / "prometheus/rules.yml").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if m := re.match(r"\s*- alert: (\w+)$", line):
            out.append({"alert": m.group(1)})
        elif out and (m := re.match(r"(\s*)expr: (.*)$", line)):
            expr, indent = m.group(2), len(m.group(1))
            if expr.strip() in (">-", "|", ">", "|-"):
                body = []
                for nxt in lines[i + 1:]:
                    if len(nxt) - len(nxt.lstrip()) <= indent:
                        break
                    body.append(nxt.strip())
                expr = " ".join(body)
            out[-1]["expr"] = expr
        elif out and (m := re.match(r"\s*(severity|summary): (.*)$", line)):
            out[-1][m.group(1)] = m.group(2)
    return out


def _series(expr: str) -> set[str]:
    """The metric names an expression selects (not functions, keywords or label names)."""
    no_labels = re.sub(r"\{[^}]*\}", "{}", expr)
    no_by = re.sub(r"\b(by|without)\s*\([^)]*\)", "", no_labels)
    no_strings = re.sub(r'"[^"]*"', "", no_by)
    return {n for n in _NAME.findall(no_strings) if n not in _FUNCTIONS}


def test_every_alert_names_only_metrics_the_hub_exposes() -> None:
    alerts = _alerts()
    names = {a["alert"] for a in alerts}
    # what issue 15 asks for: dead-letter growth, a breaker open for long, sync failures
    # (提醒预警), deadlines near or past
    assert {"HubDeadLettersGrowing", "HubBreakerOpenLong", "HubSyncFailed",
            "HubDeadlinePast", "HubDeadlineNear"} <= names
    for a in alerts:
        assert a.get("expr") and a.get("severity") and a.get("summary"), a
        used = _series(a["expr"])
        assert used, a
        unknown = {n for n in used if n not in METRIC_NAMES and n not in PROMETHEUS_OWN}
        assert not unknown, f"{a['alert']}: {unknown}"
    assert _series('sum by (route) (delta(hub_nope{x="y"}[5m])) > 0') == {"hub_nope"}
    breaker = next(a for a in alerts if a["alert"] == "HubBreakerOpenLong")
    assert "hub_breaker_open" in breaker["expr"]


def test_the_dashboard_queries_only_metrics_the_hub_exposes() -> None:
    dash = json.loads((OPS / "grafana/dashboards/hub.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    used = set().union(*(_series(e) for e in exprs))
    assert not used - METRIC_NAMES, used - METRIC_NAMES
    for want in ("hub_messages_total", "hub_queue_depth", "hub_dead_letters",
                 "hub_breaker_open", "hub_partner_call_seconds_bucket", "hub_job_progress",
                 "hub_deadlines"):
        assert want in used
    source = (OPS / "grafana/provisioning/datasources/prometheus.yml").read_text()
    uids = {p["datasource"]["uid"] for p in dash["panels"]}
    assert uids == {re.search(r"uid: (\S+)", source).group(1)}  # type: ignore[union-attr]


def test_prometheus_scrapes_with_the_compose_files_metrics_token() -> None:
    config = (OPS / "prometheus/prometheus.yml").read_text(encoding="utf-8")
    token_file = re.search(r"credentials_file: (\S+)", config).group(1)  # type: ignore[union-attr]
    token = (OPS / "prometheus" / token_file).read_text().strip()
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert re.search(rf"^\s+HUB_METRICS_TOKEN: {re.escape(token)}\s*$", compose, re.M)
    for service in ("prometheus", "grafana"):
        block = re.search(rf"^  {service}:\n((?:    .*\n|\n)+)", compose, re.M)
        assert block and "profiles: [observability]" in block.group(1), service
    assert "./ops/prometheus:/etc/prometheus" in compose
    assert "./ops/grafana/dashboards:/var/lib/grafana/dashboards" in compose


@pytest.mark.skipif(shutil.which("promtool") is None and not os.environ.get("CI"),
                    reason="promtool (Debian prometheus) not installed: scripts/browser.sh")
def test_promtool_accepts_the_config_and_the_rules_fire_as_written() -> None:
    for args in (["check", "config", "prometheus.yml"], ["test", "rules", "rules_test.yml"]):
        r = subprocess.run(["promtool", *args], cwd=OPS / "prometheus", capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
