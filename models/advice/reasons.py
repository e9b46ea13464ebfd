"""One plain sentence per assortment row, built from the row's own numbers (each quoted once)."""

from __future__ import annotations

from typing import Any

import polars as pl

from models.advice.settings import AssortmentSettings


def units(x: float) -> str:
    """Units as a merchandiser reads them: 0.4, 12.3, 140."""
    return f"{x:.1f}" if abs(x) < 100 else f"{x:,.0f}"


def money(x: float) -> str:
    """Weekly revenue without a currency symbol (the report adds the currency): 3.20, 45.10, 1,240."""
    return f"{x:,.2f}" if abs(x) < 100 else f"{x:,.0f}"


def _standing(r: dict[str, Any]) -> str:
    """'top seller' / 'slow seller' only where true against the store's own kept SKUs."""
    if r["top"]:
        return "a top seller here"
    if r["slow"]:
        return "a slow seller here"
    return ""


def _evidence(r: dict[str, Any]) -> str:
    if r["evidence"] == "latent":
        return (
            f"Shoppers in {r['region']} buy it online although no store there carries it: an estimated "
            f"{units(r['weekly_units'])} units/week per store (95% CI {units(r['latent_low'])}-"
            f"{units(r['latent_high'])}), revenue {money(r['expected_weekly_revenue'])}/week"
        )
    expected = (
        f"expected {units(r['weekly_units'])} units/week here (at least {units(r['weekly_low'])} at the "
        f"10% bound), revenue {money(r['expected_weekly_revenue'])}/week"
    )
    if r["evidence"] == "affinity":
        return (
            f"Sells {r['affinity_lift']:.1f}x its chain-wide share in {r['region']} stores that carry it "
            f"(95% CI {r['affinity_ci']}x); {expected}"
        )
    if r["evidence"] == "region":
        return (
            f"A best seller on neighbouring shelves: {units(r['region_units'])} units/week in each of the "
            f"{r['region_stores']} {r['region']} stores that carry it; {expected}"
        )
    return (
        f"A chain best seller: {units(r['chain_units'])} units/week in each of the {r['chain_stores']} "
        f"stores that carry it; {expected}"
    )


def _add(r: dict[str, Any], s: AssortmentSettings) -> str:
    slot = (
        "in a free slot"
        if r["replaces"] is None
        else f"replacing {r['other_name']} ({r['replaces']}, {units(r['other_units'])} units/week)"
    )
    return f"{_evidence(r)}; {slot}: +{money(r['gain'])}/week net of demand transference."


def _drop(r: dict[str, Any], s: AssortmentSettings) -> str:
    standing = _standing(r)
    head = f"{units(r['weekly_units'])} units/week expected (revenue {money(r['expected_weekly_revenue'])})"
    head = f"{standing[0].upper()}{standing[1:]}: {head}" if standing else f"Sells {head}"
    share = f"{s.transference_share:.0%} of its demand expected to move to kept {r['sub']} items"
    if r["forced"]:
        return (
            f"{head}; the {r['category']} shelf holds {r['capacity']} SKUs and the store carries "
            f"{r['n_carried']}: dropped to fit, the smallest loss ({money(-r['gain'])}/week) after the "
            f"{share}."
        )
    return (
        f"{head}; replaced by {r['other_name']} ({r['replaces']}) of the same subcategory: "
        f"+{money(r['gain'])}/week after the {share}."
    )


def _keep(r: dict[str, Any], s: AssortmentSettings) -> str:
    standing = _standing(r)
    text = (
        f"{'Keeps its place' if not standing else standing[0].upper() + standing[1:]}: "
        f"{units(r['weekly_units'])} units/week expected (revenue {money(r['expected_weekly_revenue'])}), "
        f"#{r['rank']} of {r['n_kept']} kept {r['category']} SKUs."
    )
    notes = []
    if r["must"]:
        notes.append("On the must-carry list.")
    if r["recent_weekly"] > r["weekly_high"]:
        notes.append(
            f"Its own recent sales ({units(r['recent_weekly'])} units/week) run above the forecast, "
            "so it is not dropped."
        )
    if r["slow"] and r["n_sub_kept"] == 1:
        notes.append(f"The store's only {r['sub']} item.")
    return " ".join([text, *notes])


def reason_column(advice: pl.DataFrame, settings: AssortmentSettings) -> pl.Series:
    """Return the reason of every row of ``advice`` (see ``recommend_assortment``)."""
    write = {"add": _add, "drop": _drop, "keep": _keep}
    return pl.Series(
        "reason",
        [write[r["action"]](r, settings) for r in advice.iter_rows(named=True)],
        dtype=pl.String,
    )
