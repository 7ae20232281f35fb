"""What the monitoring tests hand to promtool, and what they read back from PromQL without it.

Why these helpers: ``promtool test rules`` takes series in its own notation (``name{labels}`` and
expanding values such as ``0x19 1x59``), not Prometheus's text format, and takes a plain rule file,
not a ``PrometheusRule`` object. The dashboard's expressions carry Grafana's template variables,
which PromQL does not parse. And a rule or panel over a metric the operator does not expose would
be silent, never wrong, so the names each expression reads are extracted and compared with a scrape.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "GRAFANA_VARIABLES",
    "check_rules",
    "dashboard_expressions",
    "held_series",
    "metric_names",
    "plain_rules",
    "run_promtool",
    "substitute_variables",
]

Labels = tuple[tuple[str, str], ...]
Samples = Mapping[tuple[str, Labels], float]

#: What each Grafana variable stands for when an expression is parsed: a duration inside a range,
#: the "All" regex inside a label matcher.
GRAFANA_VARIABLES = {
    "$__rate_interval": "2m",
    "$__interval": "1m",
    "$__range": "1h",
    "$namespace": ".*",
    "${namespace}": ".*",
}
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENTIFIER = re.compile(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"})


def run_promtool(promtool: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def check_rules(promtool: Path, groups: list[dict[str, Any]], *, directory: Path) -> str:
    """``promtool check rules`` over ``groups``; its output, asserting it passed."""
    path = directory / "check.rules.json"
    path.write_text(json.dumps({"groups": groups}), encoding="utf-8")
    done = run_promtool(promtool, "check", "rules", path.name, cwd=directory)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def plain_rules(prometheus_rule: Mapping[str, Any], *, annotations: bool) -> dict[str, Any]:
    """The rule file a ``PrometheusRule`` stands for (its ``spec``): what Prometheus loads.
    Without ``annotations`` for ``promtool test rules``, which compares rendered annotations
    too; their templates are checked by ``check rules`` on the whole file."""
    assert prometheus_rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert prometheus_rule["kind"] == "PrometheusRule"
    groups = []
    for group in prometheus_rule["spec"]["groups"]:
        rules = [
            {k: v for k, v in rule.items() if annotations or k != "annotations"}
            for rule in group["rules"]
        ]
        groups.append({**group, "rules": rules})
    return {"groups": groups}


def _series(name: str, labels: Labels, extra: Mapping[str, str]) -> str:
    pairs = {**dict(labels), **extra}
    inner = ",".join(f"{key}={json.dumps(value)}" for key, value in sorted(pairs.items()))
    return f"{name}{{{inner}}}"


def _held(value: float | None, count: int) -> str:
    """``count`` samples of ``value`` (``_``: no sample) in promtool's expanding notation."""
    if value is None:
        return f"_x{count - 1}" if count > 1 else "_"
    text = repr(float(value))
    return f"{text}x{count - 1}" if count > 1 else text


def held_series(
    phases: Iterable[tuple[Samples, int]], *, extra: Mapping[str, str]
) -> Iterator[dict[str, str]]:
    """promtool ``input_series``: every series of every scrape, each scrape's value held for its
    number of samples, one phase after the other (a series absent from a scrape has no samples
    there). ``extra`` labels are added as Prometheus adds its target labels."""
    phases = list(phases)
    keys = sorted({key for samples, _ in phases for key in samples})
    for name, labels in keys:
        values = " ".join(_held(samples.get((name, labels)), count) for samples, count in phases)
        yield {"series": _series(name, labels, extra), "values": values}


def dashboard_expressions(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, expr)`` of every query in the dashboard: panel targets (rows included) and
    query variables."""

    def panels(items: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels") or ())

    for panel in panels(dashboard.get("panels") or ()):
        for target in panel.get("targets") or ():
            yield f"panel {panel['id']} {panel.get('title')!r} {target['refId']}", target["expr"]
    for variable in (dashboard.get("templating") or {}).get("list") or ():
        if variable.get("type") == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", text.strip())
            assert match, f"variable {variable['name']}: not label_values(selector, label)"
            yield f"variable {variable['name']}", match.group(1)


def substitute_variables(expr: str) -> str:
    """``expr`` with each Grafana variable replaced by what it stands for; an unknown one fails."""

    def value(match: re.Match[str]) -> str:
        name = match.group()
        assert name in GRAFANA_VARIABLES, f"unknown Grafana variable {name} in {expr}"
        return GRAFANA_VARIABLES[name]

    return _VARIABLE.sub(value, expr)


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects: identifiers left once strings, label matchers,
    grouping label lists and ranges are gone, except functions, aggregations and keywords."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _GROUPING.sub("", text)
    text = _RANGE.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group().lower() not in _KEYWORDS:
            names.add(match.group())
    return names
