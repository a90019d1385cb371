"""Rich tables for attribution answers (shared by `attribute`, `query` and `demo`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table


def attribution_tables(data: dict[str, Any], title: str = "Attribution") -> Group:
    """Models side by side: conversions and value per channel, then the totals."""
    models = data.get("models", {})
    channels = sorted({ch for m in models.values() for ch in m.get("channels", {})})
    conv = Table(title=f"{title}: conversions credited", title_justify="left")
    value = Table(title=f"{title}: value credited", title_justify="left")
    for table in (conv, value):
        table.add_column("channel")
        for model in models:
            table.add_column(model, justify="right")
    for ch in channels:
        cells = [models[m].get("channels", {}).get(ch, {}) for m in models]
        conv.add_row(ch, *(f"{c.get('conversions', 0.0):,.2f}" for c in cells))
        value.add_row(ch, *(f"{c.get('value', 0.0):,.2f}" for c in cells))
    return Group(conv, value, totals_table(data.get("totals", {})))


def totals_table(totals: dict[str, Any]) -> Table:
    """Totals as a two-column table."""
    table = Table(title="Totals", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, amount in totals.items():
        text = f"{amount:,.2f}" if isinstance(amount, float) else f"{amount:,}"
        table.add_row(name, text)
    return table


def render_attribution(console: Console, data: dict[str, Any]) -> None:
    """Print an attribution object."""
    console.print(attribution_tables(data))


def render_totals(console: Console, data: dict[str, Any]) -> None:
    """Print totals."""
    console.print(totals_table(data))


def render_credits(console: Console, data: dict[str, Any]) -> None:
    """Print credits for a time range."""
    span = f"{data.get('from') or 'start'} to {data.get('to') or 'now'}"
    console.print(attribution_tables({"models": data.get("models", {})}, title=f"Credits {span}"))


def render_markov(console: Console, data: dict[str, Any]) -> None:
    """Print Markov removal effects and the transition matrix."""
    effects = Table(title="Markov removal effects", title_justify="left")
    for column in ("channel", "removal effect", "value removal effect", "conversions", "value"):
        effects.add_column(column, justify="left" if column == "channel" else "right")
    for ch, c in sorted(data.get("channels", {}).items()):
        effects.add_row(
            ch,
            f"{c.get('removal_effect', 0.0):.4f}",
            f"{c.get('removal_effect_value', 0.0):.4f}",
            f"{c.get('conversions', 0.0):,.2f}",
            f"{c.get('value', 0.0):,.2f}",
        )
    console.print(effects)
    console.print(f"conversion probability: {data.get('conversion_probability')}")
    matrix = Table(title="Transition probabilities", title_justify="left")
    for column in ("from", "to", "probability", "count"):
        matrix.add_column(column)
    for edge in data.get("transition_matrix", [])[:200]:
        matrix.add_row(
            str(edge.get("from")),
            str(edge.get("to")),
            f"{edge.get('probability', 0.0):.4f}",
            f"{edge.get('count', 0.0):,.0f}",
        )
    console.print(matrix)
