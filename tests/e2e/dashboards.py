"""What the Grafana dashboards query, and what a /metrics page exports (for the tests)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"

#: PromQL words that are not metric names: functions, aggregations, keywords.
PROMQL_WORDS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "group",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "rate",
        "irate",
        "increase",
        "delta",
        "idelta",
        "deriv",
        "predict_linear",
        "histogram_quantile",
        "abs",
        "ceil",
        "floor",
        "round",
        "clamp",
        "clamp_min",
        "clamp_max",
        "exp",
        "ln",
        "log2",
        "log10",
        "sqrt",
        "time",
        "timestamp",
        "vector",
        "scalar",
        "sort",
        "sort_desc",
        "label_replace",
        "label_join",
        "absent",
        "absent_over_time",
        "changes",
        "resets",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "last_over_time",
        "quantile_over_time",
    ]
)


def dashboard_exprs() -> Iterator[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) of every query of every dashboard."""
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                yield path.name, panel["title"], target["expr"]


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects (label matchers, grouping labels,
    durations, strings and numbers taken out first)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', " ", expr)  # strings (label values)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range durations
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", text)  # grouping labels
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    return {w for w in words if w not in PROMQL_WORDS}


def exported_series(exposition: str) -> set[str]:
    """Every series name a /metrics page offers, per family type: a counter ``x`` is
    ``x_total``; a histogram ``x`` is ``x_bucket``, ``x_sum`` and ``x_count``; a summary
    ``x``, ``x_sum`` and ``x_count``; a gauge ``x``. Families with no samples yet (a
    labelled metric never touched) count too: their TYPE line is the export."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        base = family.name
        if family.type == "counter":
            names |= {f"{base}_total", f"{base}_created"}
        elif family.type == "histogram":
            names |= {f"{base}_bucket", f"{base}_sum", f"{base}_count", f"{base}_created"}
        elif family.type == "summary":
            names |= {base, f"{base}_sum", f"{base}_count", f"{base}_created"}
        else:
            names.add(base)
        names |= {sample.name for sample in family.samples}
    return names
