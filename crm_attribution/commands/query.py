"""``crm-attribution query``: ask a running worker and print tables (or JSON)."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from rich.console import Console

from crm_attribution.cli import UserError
from crm_attribution.commands.common import settings_from
from crm_attribution.render import render_attribution, render_credits, render_markov, render_totals

WHAT = ("attribution", "totals", "credits", "markov", "analytics", "customer", "dashboard")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the subcommand."""
    p = sub.add_parser("query", help="query the stream's tables through a worker's HTTP API")
    p.add_argument(
        "what",
        choices=WHAT,
        help="what to ask for (dashboard: print the link that opens the live dashboard)",
    )
    p.add_argument("customer_id", nargs="?", help="customer id (for `query customer`)")
    p.add_argument("--url", help="worker URL (default: http://<worker.web_host>:<worker.web_port>)")
    p.add_argument("--model", help="model(s) for credits, comma-separated (default: every model)")
    p.add_argument(
        "--from", dest="start", help="first purchase day YYYY-MM-DD (credits; default: the first)"
    )
    p.add_argument(
        "--to", dest="end", help="last purchase day YYYY-MM-DD (credits; default: the last)"
    )
    p.add_argument(
        "--ci",
        help="credits: all-time credits with bootstrap intervals at this level, e.g. 0.95 "
        "(default: no intervals; the workers need attribution.credit_intervals = true)",
    )
    p.add_argument("--resamples", help="credits with --ci: bootstrap resamples (default: 200)")
    p.add_argument("--seed", help="credits with --ci: bootstrap seed (default: 0)")
    p.add_argument("--refresh", action="store_true", help="re-solve Markov now (markov)")
    p.add_argument(
        "--customers", action="store_true", help="include every customer's RFM (analytics)"
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="analytics: the report of the data now, rebuilt if it changed (without it, while "
        "the data changes, the worker may answer its kept report: analytics.rebuild_cpu_share)",
    )
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.set_defaults(handler=run)


def fetch_from(
    url: str,
    path: str,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """GET a worker endpoint; turn HTTP and connection failures into readable errors."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    request = urllib.request.Request(f"{url.rstrip('/')}{path}{query}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            reason = json.loads(error.read()).get("error", error.reason)
        except (ValueError, AttributeError):
            reason = error.reason
        raise UserError(f"the worker answered HTTP {error.code}: {reason}") from None
    except urllib.error.URLError as error:
        raise UserError(
            f"no worker answers at {url} ({error.reason}). Start one with "
            "`crm-attribution worker`, or pass --url."
        ) from None


def run(args: argparse.Namespace) -> int:
    """Fetch and print."""
    settings = settings_from(args)
    url = args.url or f"http://{settings.worker.web_host}:{settings.worker.web_port}"
    console = Console()
    from stream.api.access import client_headers, client_token

    if args.what == "dashboard":
        # A browser sends no bearer header: the link carries the token once, and the worker
        # answers with a cookie and the address without it.
        token = client_token(settings)
        link = f"{url.rstrip('/')}/dashboard"
        print(f"{link}?token={urllib.parse.quote(token, safe='')}" if token else link)
        return 0
    headers = client_headers(settings)

    def fetch(path: str, params: dict[str, str] | None = None) -> Any:
        return fetch_from(url, path, params, headers)

    if args.what == "attribution":
        data = fetch("/attribution")
        render = render_attribution
    elif args.what == "totals":
        data = fetch("/totals")
        render = render_totals
    elif args.what == "credits":
        asked = (
            ("model", args.model),
            ("from", args.start),
            ("to", args.end),
            ("ci", args.ci),
            ("resamples", args.resamples),
            ("seed", args.seed),
        )
        params = {k: v for k, v in asked if v}
        data = fetch("/credits", params)
        render = render_credits
    elif args.what == "markov":
        data = fetch("/markov", {"refresh": "1"} if args.refresh else None)
        render = render_markov
    elif args.what == "analytics":
        flags = {"customers": args.customers, "fresh": args.fresh}
        data = fetch("/analytics", {k: "1" for k, v in flags.items() if v} or None)
        window = settings.analytics.rfm_window_days
        render = lambda console, data: _render_analytics(console, data, window)  # noqa: E731
    else:
        if not args.customer_id:
            raise UserError("`query customer` needs a customer id")
        data = fetch(f"/customers/{urllib.parse.quote(args.customer_id, safe='')}")
        render = None
    if args.format == "json" or render is None:
        print(json.dumps(data, indent=None if args.format == "json" else 2, sort_keys=True))
    else:
        render(console, data)
    return 0


def _render_analytics(console: Console, data: Any, rfm_window_days: float) -> None:
    from crm_attribution.render_report import report_tables

    console.print(report_tables(data, rfm_window_days))
