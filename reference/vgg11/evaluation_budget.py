"""Chips or images? How to spend a fixed evaluation budget on the mean PA, from measured spreads.

The mean PA over C chips, each evaluated on the same S test images, has two sources of error:

- chip to chip: sigma_c^2 / C, with sigma_c the spread of per-chip PA on the whole test set;
- the images: a chip's PA on S images scatters around its whole-test-set value with variance at
  most p(1-p)/S * (1 - S/N) (binomial, finite population N). The same images serve every chip
  and are hard or easy for all of them, so this part averages out over chips somewhere between
  not at all (``high``: p(1-p)/S) and fully (``low``: p(1-p)/(C S)).

The compute is C * S forward passes. For a budget K = C * S the ``high`` error is smallest at
C* = sqrt(sigma_c^2 K / (p(1-p))); the ``low`` error only falls as C grows. This script reads
per-chip PA on the whole test set (``chips.csv`` of ``reference/layouts/measure_layouts.py``) and
prints, per BER, sigma_c, the standard error of a few designs of equal cost, and C*.

    python reference/vgg11/evaluation_budget.py reference/layouts/vgg11/chips.csv --budget 10000
"""
from __future__ import annotations

import math

import click
import pandas as pd

TEST_IMAGES = 10_000


def standard_errors(sigma_c: float, p: float, chips: int, images: int, population: int = TEST_IMAGES
                    ) -> tuple[float, float]:
    """(low, high) standard error of the mean PA, in points, of ``chips`` chips on ``images`` images."""
    image_var = 1e4 * p * (1 - p) / images * (1 - images / population)
    return (math.sqrt(sigma_c ** 2 / chips + image_var / chips), math.sqrt(sigma_c ** 2 / chips + image_var))


def budget_table(per_chip: pd.DataFrame, budget: int, designs: tuple[int, ...]) -> pd.DataFrame:
    """One row per (BER, design of ``budget`` forward passes): chips, images, low and high error."""
    rows = []
    for ber, group in per_chip.groupby("ber"):
        sigma_c, p = group.pa.std(ddof=1), group.pa.mean() / 100
        best = math.sqrt(sigma_c ** 2 * budget / (1e4 * p * (1 - p)))
        for chips in designs:
            images = budget // chips
            if images < 1 or images > TEST_IMAGES:
                continue
            low, high = standard_errors(sigma_c, p, chips, images)
            rows.append({"ber": ber, "pa_mean": 100 * p, "sigma_chips": sigma_c, "chips": chips,
                         "images": images, "se_low": low, "se_high": high, "best_chips_high": best})
    return pd.DataFrame(rows)


@click.command()
@click.argument("chips_csv", type=click.Path(exists=True, dir_okay=False))
@click.option("--budget", type=click.IntRange(1), default=10_000, show_default=True,
              help="Forward passes per configuration and voltage (chips x images).")
@click.option("--layout", default="arrays", show_default=True)
def main(chips_csv: str, budget: int, layout: str) -> None:
    """Print the error of equal-cost (chips, images) designs for each BER of CHIPS_CSV."""
    per_chip = pd.read_csv(chips_csv)
    per_chip = per_chip[per_chip.layout == layout]
    table = budget_table(per_chip, budget, (5, 10, 20, 25, 40, 50))
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
