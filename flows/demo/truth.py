"""Compare mined patterns with a demo world's planted truth (demo and tests only, never the method)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import polars as pl

from flows.demo.unlabeled import discovery_quality


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
    found = discovery_quality(patterns, truth.get("discovered_event", []))
    result["discovered_event"] = found
    result["summary"] = (
        ", ".join(
            f"{k} {result[k]['found']}/{result[k]['planted']}"
            for k in ("event_uplift", "local_affinity", "latent_demand")
        )
        + f"; patterns on no-effect event types: {false_hits}"
        + f"; unlabeled events found {found['planted'] - len(found['missed'])}/{found['planted']}"
        + f" ({found['found']} windows reported)"
    )
    return result


def _keys(kind: str) -> list[str]:
    return ["region", "sku", "event_type"] if kind == "event_uplift" else ["region", "sku"]


def _planted_frame(truth: dict[str, Any], kind: str) -> pl.DataFrame:
    rows = [{k: p[k] for k in (*_keys(kind), "lift") if k in p} for p in truth.get(kind, [])]
    schema = {"region": pl.String, "sku": pl.String, "event_type": pl.String, "lift": pl.Float64}
    return pl.DataFrame(rows, schema={k: schema[k] for k in (*_keys(kind), "lift")})


def mining_quality(patterns: pl.DataFrame, truth: dict[str, Any]) -> dict[str, float | int]:
    """Precision, recall and median relative lift error of each kind against the planted truth.

    A reported pattern is true when the same (region, sku[, event_type]) was planted (affinity: in the
    same direction). Chain-wide rows (region ``ALL``) are scored apart: true when the SKU was planted
    for that event type in every region; ``event_uplift.recall_with_chain`` counts a region's planted
    riser as found when its own pattern or the chain-wide one of its type and SKU is reported (what
    the pre-stock plan acts on). Also counts the patterns on no-effect event types.
    """
    out: dict[str, float | int] = {}
    regions = {p["region"] for kind in ("event_uplift",) for p in truth.get(kind, [])}
    for kind in ("event_uplift", "local_affinity", "latent_demand"):
        keys = _keys(kind)
        found = patterns.filter((pl.col("kind") == kind) & (pl.col("region") != "ALL")).select(*keys, "lift")
        planted = _planted_frame(truth, kind)
        if kind == "local_affinity":
            found = found.with_columns((pl.col("lift") > 1).alias("up"))
            planted = planted.with_columns((pl.col("lift") > 1).alias("up"))
            keys = [*keys, "up"]
        hits = found.join(planted, on=keys, suffix="_planted")
        out[f"{kind}.reported"] = found.height
        out[f"{kind}.planted"] = planted.height
        out[f"{kind}.recall"] = hits.height / planted.height if planted.height else float("nan")
        out[f"{kind}.precision"] = hits.height / found.height if found.height else float("nan")
        if kind != "latent_demand" and hits.height:
            err = (hits["lift"] / hits["lift_planted"] - 1).abs()
            out[f"{kind}.median_lift_error"] = float(cast(float, err.median()))
    chain = patterns.filter((pl.col("kind") == "event_uplift") & (pl.col("region") == "ALL"))
    everywhere = (
        _planted_frame(truth, "event_uplift")
        .group_by("event_type", "sku")
        .agg(pl.col("region").n_unique().alias("n"))
        .filter(pl.col("n") == len(regions))
    )
    out["event_uplift.chain_reported"] = chain.height
    out["event_uplift.chain_true"] = chain.join(everywhere, on=["event_type", "sku"]).height
    # what the pre-stock plan acts on: a region's planted riser is covered by its own pattern or by the
    # chain-wide one of its type and SKU (``models.advice.prestock`` spreads ALL rows to every region)
    planted = _planted_frame(truth, "event_uplift")
    own = patterns.filter((pl.col("kind") == "event_uplift") & (pl.col("region") != "ALL"))
    covered = planted.join(
        own.select("region", "sku", "event_type").unique(), on=["region", "sku", "event_type"]
    )
    by_chain = planted.join(covered, on=["region", "sku", "event_type"], how="anti").join(
        chain.select("sku", "event_type").unique(), on=["sku", "event_type"]
    )
    out["event_uplift.recall_with_chain"] = (
        (covered.height + by_chain.height) / planted.height if planted.height else float("nan")
    )
    null_types = truth.get("null_event_types", [])
    out["null_event_patterns"] = patterns.filter(
        (pl.col("kind") == "event_uplift") & pl.col("event_type").is_in(null_types)
    ).height
    return out
