"""ChannelAttribution 2.2.5's answers for Markov orders 2 and 3 on a fixed path file.

Run once (needs ``pip install ChannelAttribution==2.2.5 matplotlib pandas``):

    .venv/bin/python tests/data/channelattribution/make.py

It writes ``paths.csv`` (3,000 journeys over four channels, many with repeated channels, as a
CRM log has them) and ``answers.json``: per order, ChannelAttribution's transition matrix (its
states named by channel) and its simulated removal effects and credits. The transition
probabilities are exact counts; the removal effects come from its simulation (``nsim_start``
below), so tests compare them with a tolerance (one fold of 2 million walks, capped at 1,000 steps:
no walk of this chain lasts that long). tests/attribution/test_markov_raw_states.py
reads both.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CHANNELS = ("email", "push", "sms", "search")
NSIM = 2_000_000


def write_paths(target: Path, seed: int = 14, n: int = 3000) -> None:
    """Journeys where a channel often repeats (a second email before the click)."""
    rng = np.random.default_rng(seed)
    rows = ["path,total_conversions,total_conversion_value,total_null"]
    for _ in range(n):
        length = int(rng.integers(1, 7))
        path = [str(rng.choice(CHANNELS, p=[0.4, 0.25, 0.15, 0.2]))]
        for _ in range(length - 1):
            path.append(path[-1] if rng.random() < 0.45 else str(rng.choice(CHANNELS)))
        # Journeys with sms and repeated email convert more: order 2 has something to find.
        rate = (
            0.15
            + 0.2 * ("sms" in path)
            + 0.15 * any(a == b == "email" for a, b in zip(path, path[1:], strict=False))
        )
        converted = rng.random() < rate
        value = round(float(rng.gamma(2.0, 40.0)), 2) if converted else 0.0
        rows.append(f"{' > '.join(path)},{int(converted)},{value},{int(not converted)}")
    target.write_text("\n".join(rows) + "\n")


def answers(paths: Path) -> dict[str, object]:
    """ChannelAttribution's results per order, states named by their channels."""
    import pandas as pd
    from ChannelAttribution import markov_model

    frame = pd.read_csv(paths)
    out: dict[str, object] = {
        "channelattribution": "2.2.5",
        "settings": {"nsim_start": NSIM, "nfold": 1, "max_step": 1000, "seed": 1},
    }
    for order in (2, 3):
        result = markov_model(
            frame, var_path="path", var_conv="total_conversions",
            var_value="total_conversion_value", var_null="total_null", order=order,
            nsim_start=NSIM, nfold=1, max_step=1000, flg_pro=False, verbose=False,
            out_more=True, seed=1,
        )  # fmt: skip
        names = list(result["result"]["channel_name"])  # channel i is numbered i + 1

        def state(label: str, names: list[str] = names) -> list[str] | str:
            if label.startswith("("):
                return label
            return [names[int(code) - 1] for code in label.split()]

        matrix = result["transition_matrix"]
        effects = result["removal_effects"]
        credits = result["result"]
        out[str(order)] = {
            "transitions": [
                [state(a), state(b), float(p)]
                for a, b, p in zip(
                    matrix["channel_from"],
                    matrix["channel_to"],
                    matrix["transition_probability"],
                    strict=True,
                )  # fmt: skip
            ],
            "removal_effects": dict(
                zip(
                    effects["channel_name"],
                    map(float, effects["removal_effects_conversion"]),
                    strict=True,
                )  # fmt: skip
            ),
            "conversions": dict(
                zip(credits["channel_name"], map(float, credits["total_conversions"]), strict=True)
            ),
            "value": dict(
                zip(
                    credits["channel_name"],
                    map(float, credits["total_conversion_value"]),
                    strict=True,
                )  # fmt: skip
            ),
        }
    return out


def main() -> None:
    """Write paths.csv and answers.json beside this file."""
    paths = HERE / "paths.csv"
    write_paths(paths)
    (HERE / "answers.json").write_text(json.dumps(answers(paths)) + "\n")


if __name__ == "__main__":
    main()
