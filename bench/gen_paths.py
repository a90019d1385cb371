"""Seeded generator of an aggregated path file in ChannelAttribution's layout.

    python bench/gen_paths.py [--journeys 1000000] [--channels 12] [--seed 7] [--out FILE]

Journeys are walks of an underlying Markov chain over the channels: a start distribution
(channels differ in reach), then at each step a mix of "popular channel", "same channel again"
and "a neighbouring channel" (so transitions carry structure for any number of channels). The
journey length is 1 to ``--max-length`` touches. Each channel has a conversion propensity; a
journey converts with a probability that grows with the propensities of its touches, so channels
differ in effect and the models have something to find. Journeys are aggregated by path into
``path,total_conversions,total_conversion_value,total_null`` (a row may have both conversions and
nulls); rows are written in a seeded random order. The same arguments give the same bytes.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

OUT_DIR = Path(__file__).resolve().parent / "out"
# Twelve CRM-ish channels; with more channels they are named ch0001, ch0002, ...
CHANNEL_NAMES_12 = (
    "email",
    "push",
    "sms",
    "paid_search",
    "organic_search",
    "social",
    "display",
    "affiliate",
    "referral",
    "video",
    "retargeting",
    "direct",
)


@dataclass(frozen=True)
class GenConfig:
    """What to generate; the defaults give ~600k distinct paths out of 1M journeys."""

    journeys: int = 1_000_000
    channels: int = 12
    max_length: int = 10
    seed: int = 7
    # P(length = L) is proportional to length_decay**L for L in 1..max_length (slightly
    # favouring long paths: that is what makes ~60% of the journeys distinct).
    length_decay: float = 1.04
    # Mixture weights of the next-touch kernel: popular channel, repeat, neighbour.
    popular: float = 0.55
    repeat: float = 0.10
    # Zipf exponents of the start (reach) and popular-channel distributions.
    start_exponent: float = 0.9
    popular_exponent: float = 0.4
    # Base log-odds of converting; the touches' propensities are added to it.
    base_logit: float = -3.2


def channel_names(n: int) -> tuple[str, ...]:
    """Names of ``n`` channels (the twelve CRM names when n == 12)."""
    if n == len(CHANNEL_NAMES_12):
        return CHANNEL_NAMES_12
    width = max(4, len(str(n)))
    return tuple(f"ch{i + 1:0{width}d}" for i in range(n))


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> NDArray[np.float64]:
    # Shuffled so that reach is not tied to the channel's index (nor to its neighbours).
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return np.asarray(rng.permutation(weights / weights.sum()))


def _draw(cdf: NDArray[np.float64], u: NDArray[np.float64]) -> NDArray[np.int64]:
    """Inverse-CDF draws from one discrete distribution."""
    out = np.searchsorted(cdf, u, side="right")
    return np.minimum(out, len(cdf) - 1).astype(np.int64)


def simulate(cfg: GenConfig) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Touch matrix (journeys x max_length, -1 padded), conversions (0/1) and values."""
    rng = np.random.default_rng(cfg.seed)
    n, m = cfg.channels, cfg.journeys
    start_cdf = np.cumsum(_zipf_weights(n, cfg.start_exponent, rng))
    popular_cdf = np.cumsum(_zipf_weights(n, cfg.popular_exponent, rng))
    # Neighbour offsets 1..3 (mod n): the part of the kernel that depends on the current touch.
    shift_cdf = np.cumsum(np.array([0.5, 0.3, 0.2]))
    propensity = rng.normal(0.0, 0.45, size=n)
    # A few channels that clearly drive conversions, and a few that mostly do not.
    strong = rng.choice(n, size=max(1, n // 6), replace=False)
    propensity[strong] += 0.8
    value_scale = rng.lognormal(0.0, 0.3, size=n)

    lengths_p = cfg.length_decay ** np.arange(1, cfg.max_length + 1)
    lengths = _draw(np.cumsum(lengths_p / lengths_p.sum()), rng.random(m)) + 1
    touches = np.full((m, cfg.max_length), -1, dtype=np.int64)
    current = _draw(start_cdf, rng.random(m))
    touches[:, 0] = current
    for step in range(1, cfg.max_length):
        u = rng.random(m)
        popular = _draw(popular_cdf, rng.random(m))
        neighbour = (current + 1 + _draw(shift_cdf, rng.random(m))) % n
        nxt = np.where(
            u < cfg.popular, popular, np.where(u < cfg.popular + cfg.repeat, current, neighbour)
        )
        alive = lengths > step
        touches[alive, step] = nxt[alive]
        current = np.where(alive, nxt, current)

    # Each touch adds its channel's propensity, damped so long paths do not always convert.
    touched = touches >= 0
    effect = np.where(touched, propensity[np.maximum(touches, 0)], 0.0).sum(axis=1)
    logit = cfg.base_logit + effect / np.sqrt(lengths) + 0.12 * lengths
    converted = (rng.random(m) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    last = touches[np.arange(m), lengths - 1]
    value = np.round(rng.lognormal(4.0, 0.6, size=m) * value_scale[last], 2) * converted
    return touches, converted, value


def aggregate(
    touches: NDArray[np.int64], converted: NDArray[np.int64], value: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """Distinct paths (rows of ``touches``) with their conversions, value and nulls."""
    paths, inverse = np.unique(touches, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    k = len(paths)
    conv = np.bincount(inverse, weights=converted, minlength=k).astype(np.int64)
    total = np.bincount(inverse, minlength=k).astype(np.int64)
    val = np.bincount(inverse, weights=value, minlength=k)
    return paths, conv, np.round(val, 2), total - conv


def write_csv(
    out: Path,
    names: tuple[str, ...],
    paths: NDArray[np.int64],
    conv: NDArray[np.int64],
    value: NDArray[np.float64],
    nulls: NDArray[np.int64],
    seed: int,
) -> None:
    """Write the rows in a seeded random order (a real export is not sorted by path)."""
    order = np.random.default_rng(seed + 1).permutation(len(paths))
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = ["path,total_conversions,total_conversion_value,total_null\n"]
    for i in order.tolist():
        row = paths[i]
        path = ">".join(names[c] for c in row[row >= 0].tolist())
        lines.append(f"{path},{conv[i]},{value[i]:.2f},{nulls[i]}\n")
    out.write_text("".join(lines))


def generate(cfg: GenConfig, out: Path) -> dict[str, float]:
    """Generate the file and return a summary (rows, journeys, conversions, ...)."""
    touches, converted, value = simulate(cfg)
    paths, conv, val, nulls = aggregate(touches, converted, value)
    write_csv(out, channel_names(cfg.channels), paths, conv, val, nulls, cfg.seed)
    lengths = (paths >= 0).sum(axis=1)
    return {
        "rows": float(len(paths)),
        "journeys": float(cfg.journeys),
        "conversions": float(conv.sum()),
        "value": float(val.sum()),
        "nulls": float(nulls.sum()),
        "rows_with_both": float(((conv > 0) & (nulls > 0)).sum()),
        "max_length": float(lengths.max()),
    }


def default_out(cfg: GenConfig) -> Path:
    """bench/out/paths_<journeys>j_<channels>ch_s<seed>.csv."""
    return OUT_DIR / f"paths_{cfg.journeys}j_{cfg.channels}ch_s{cfg.seed}.csv"


def main(argv: list[str] | None = None) -> int:
    """Command line entry."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--journeys", type=int, default=GenConfig.journeys)
    p.add_argument("--channels", type=int, default=GenConfig.channels)
    p.add_argument("--max-length", type=int, default=GenConfig.max_length)
    p.add_argument("--seed", type=int, default=GenConfig.seed)
    p.add_argument("--out", type=Path, default=None, help="default: bench/out/paths_...csv")
    args = p.parse_args(argv)
    if args.journeys < 1 or args.channels < 2 or args.max_length < 1:
        p.error("--journeys must be >= 1, --channels >= 2 and --max-length >= 1")
    cfg = GenConfig(
        journeys=args.journeys, channels=args.channels, max_length=args.max_length, seed=args.seed
    )
    out = args.out or default_out(cfg)
    t0 = time.perf_counter()
    summary = generate(cfg, out)
    took = time.perf_counter() - t0
    facts = ", ".join(f"{k}={v:g}" for k, v in summary.items())
    print(f"{out}: {facts} ({took:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
