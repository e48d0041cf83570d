"""Money as whole minor units (fen, cents): exact rounding and splitting, never floats."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction


def round_half_up(value: Fraction) -> int:
    """Round to the nearest integer, halves away from zero: 2.5 -> 3, -2.5 -> -3 (commercial rounding)."""
    value = Fraction(value)
    magnitude = (abs(value.numerator) * 2 + value.denominator) // (2 * value.denominator)  # floor(|v| + 1/2)
    return magnitude if value >= 0 else -magnitude


def allocate(total: int, weights: Sequence[Fraction]) -> list[int]:
    """Split `total` in proportion to `weights` so that the parts add up to `total` exactly.

    Largest-remainder method: every part gets the floor of its exact share, then the units left over go one each to
    the largest remainders, earlier index first on ties. So each part is within 1 of its exact share.
    All-zero weights put everything on the first part; no weights is only allowed for a total of 0.
    """
    shares = [Fraction(weight) for weight in weights]
    if any(share < 0 for share in shares):
        raise ValueError(f"allocate: weights must not be negative, got {[str(share) for share in shares]}")
    if total < 0:  # mirror a negative total so that rounding is symmetric around zero
        return [-part for part in allocate(-total, shares)]
    if not shares:
        if total:
            raise ValueError(f"allocate: cannot split {total} over no parts")
        return []
    weight_sum = sum(shares, Fraction(0))
    if weight_sum == 0:
        return [total] + [0] * (len(shares) - 1)
    exact = [total * share / weight_sum for share in shares]
    parts = [share.numerator // share.denominator for share in exact]
    left = total - sum(parts)
    # sorted() is stable, so equal remainders keep index order: the earlier part wins the tie
    by_remainder = sorted(range(len(exact)), key=lambda index: exact[index] - parts[index], reverse=True)
    for index in by_remainder[:left]:
        parts[index] += 1
    return parts

