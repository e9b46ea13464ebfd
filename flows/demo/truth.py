"""Compare mined patterns with a demo world's planted truth (demo and tests only, never the method)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl


def _found(patterns: pl.DataFrame, kind: str, planted: dict[str, Any]) -> bool:
    cond = (
        (pl.col("kind") == kind) & (pl.col("region") == planted["region"]) & (pl.col("sku") == planted["sku"])
    )
    if kind == "event_uplift":
        cond &= pl.col("event_type") == planted["event_type"]
    if kind == "local_affinity":
        # the direction must match: a planted taste above the chain is found only as lift > 1
        above = float(planted.get("lift", 2.0)) > 1
        cond &= (pl.col("lift") > 1) if above else (pl.col("lift") < 1)
    return patterns.filter(cond).height > 0


def compare_with_truth(patterns_path: Path, truth_path: Path) -> dict[str, Any]:
    """Return recall of each planted kind, the false patterns on no-effect event types, and a summary."""
    patterns = pl.read_parquet(patterns_path)
    truth = json.loads(Path(truth_path).read_text())
    result: dict[str, Any] = {}
    for kind in ("event_uplift", "local_affinity", "latent_demand"):
        planted = truth.get(kind, [])
        hits = [p for p in planted if _found(patterns, kind, p)]
        result[kind] = {
            "planted": len(planted),
            "found": len(hits),
            "missed": [p for p in planted if p not in hits],
        }
    null_types = truth.get("null_event_types", [])
    false_hits = patterns.filter(
        (pl.col("kind") == "event_uplift") & pl.col("event_type").is_in(null_types)
    ).height
    result["null_event_patterns"] = false_hits
    result["summary"] = (
        ", ".join(
            f"{k} {result[k]['found']}/{result[k]['planted']}"
            for k in ("event_uplift", "local_affinity", "latent_demand")
        )
        + f"; patterns on no-effect event types: {false_hits}"
    )
    return result
