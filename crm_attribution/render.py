"""Terminal tables for attribution answers (shared by `attribute`, `query` and `demo`).

Every table is a :class:`~crm_attribution.render_fit.Sheet`: it folds or goes vertical to fit
the console, and never cuts a number.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group

from crm_attribution.render_fit import Sheet, num


def attribution_sheets(data: dict[str, Any], title: str = "Attribution") -> list[Sheet]:
    """Models side by side: conversions and value per channel, then the totals."""
    models = data.get("models", {})
    channels = sorted({ch for m in models.values() for ch in m.get("channels", {})})
    confidence = data.get("confidence")
    suffix = ""
    if confidence:
        suffix = f" [{confidence['level']:.0%} interval, {confidence['resamples']:,} resamples]"
    conv = Sheet(f"{title}: conversions credited{suffix}", ["channel", *models])
    value = Sheet(f"{title}: value credited{suffix}", ["channel", *models])
    for ch in channels:
        cells = [models[m].get("channels", {}).get(ch, {}) for m in models]
        conv.add_row(ch, *(_with_interval(c, "conversions") for c in cells))
        value.add_row(ch, *(_with_interval(c, "value") for c in cells))
    sheets = [conv, value]
    if confidence:
        conv.notes.append(
            f"[low, high]: {confidence['method']}, seed {confidence['seed']}, "
            f"{confidence['customers']:,} customers"
        )
    if "totals" in data:
        sheets.append(totals_sheet(data["totals"]))
    return sheets


def _with_interval(credit: dict[str, Any], name: str) -> str:
    """The credit, and its interval in brackets when there is one."""
    shown = num(credit.get(name, 0.0))
    interval = (credit.get("ci") or {}).get(name)
    if interval is None:
        return shown
    return f"{shown} [{num(interval[0])}, {num(interval[1])}]"


def attribution_tables(data: dict[str, Any], title: str = "Attribution") -> Group:
    """The attribution sheets as one renderable."""
    return Group(*attribution_sheets(data, title))


def totals_sheet(totals: dict[str, Any]) -> Sheet:
    """Totals as a two-column sheet."""
    sheet = Sheet("Totals", ["measure", "value"])
    for name, amount in totals.items():
        sheet.add_row(name, num(amount))
    return sheet


def render_attribution(console: Console, data: dict[str, Any]) -> None:
    """Print an attribution object."""
    console.print(attribution_tables(data))


def render_totals(console: Console, data: dict[str, Any]) -> None:
    """Print totals."""
    console.print(totals_sheet(data))


def render_credits(console: Console, data: dict[str, Any]) -> None:
    """Print credits for a time range."""
    span = f"{data.get('from') or 'start'} to {data.get('to') or 'now'}"
    shown: dict[str, Any] = {k: data[k] for k in ("models", "confidence") if k in data}
    console.print(attribution_tables(shown, title=f"Credits {span}"))


def markov_sheets(data: dict[str, Any], max_edges: int = 200) -> list[Sheet]:
    """Markov removal effects, then the transition matrix (its ``max_edges`` first edges)."""
    effects = Sheet(
        "Markov removal effects",
        ["channel", "removal effect", "value removal effect", "conversions", "value"],
    )
    for ch, c in sorted(data.get("channels", {}).items()):
        effects.add_row(
            ch,
            num(c.get("removal_effect"), 4),
            num(c.get("removal_effect_value"), 4),
            num(c.get("conversions", 0.0)),
            num(c.get("value", 0.0)),
        )
    effects.notes.append(f"conversion probability: {num(data.get('conversion_probability'), 6)}")
    edges = data.get("transition_matrix", [])
    matrix = Sheet("Transition probabilities", ["from", "to", "probability", "count"], keys=2)
    for edge in edges[:max_edges]:
        matrix.add_row(
            str(edge.get("from")),
            str(edge.get("to")),
            num(edge.get("probability", 0.0), 4),
            num(edge.get("count", 0.0), 0),
        )
    if len(edges) > max_edges:
        matrix.notes.append(f"{max_edges} of {len(edges)} transitions shown (JSON has all)")
    return [effects, matrix]


def render_markov(console: Console, data: dict[str, Any]) -> None:
    """Print Markov removal effects and the transition matrix."""
    console.print(Group(*markov_sheets(data)))
