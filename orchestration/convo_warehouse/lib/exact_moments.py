"""Means and sample variances from exact partial sums: pure functions, no warehouse.

The SQL macros of ``macros/aggregation/exact_moments.sql`` keep, for a
metric ``prefix``, the count ``<prefix>_n`` and integer parts
``<prefix>_sum_p<k>`` / ``<prefix>_square_sum_p<k>`` whose values times
2^-k add up to the exact sum of the values (each rounded to a multiple of
2^-60) and of their squares. Partial sums (per day) add up
part by part, so the totals do not depend on how the rows were split or
ordered. Here the parts become exact rationals, and the mean and the sample
variance are computed exactly and rounded once to a double: the same bits
however the history was batched. The scale of each part is read from its
name, so it is defined in one place (the macro).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction


def exact_total(row: Mapping[str, object], prefix: str, moment: str) -> Fraction:
    """The exact sum (``moment`` "sum") or sum of squares ("square_sum") of ``prefix``'s values.

    Adds every ``<prefix>_<moment>_p<k>`` part of ``row`` times 2^-k. Parts are
    integers, as int or as text (how the warehouse hands them over: a
    38-digit integer does not survive a double).
    """
    head = f"{prefix}_{moment}_p"
    total = Fraction(0)
    found = False
    for name, value in row.items():
        exponent = name[len(head):]
        if not name.startswith(head) or not exponent.isdigit():
            continue
        found = True
        if value is None:
            continue
        total += Fraction(int(str(value)), 2 ** int(exponent))
    if not found:
        raise KeyError(f"no {prefix}_{moment}_p<k> parts in the row (columns: {', '.join(row)})")
    return total


def mean_and_variance(row: Mapping[str, object], prefix: str) -> tuple[int, float | None, float | None]:
    """(n, mean, sample variance) of ``prefix``'s values from their exact parts.

    The mean is None without values, the variance (n - 1 denominator) below
    two values. Both are exact rationals rounded once to the nearest double.
    """
    n = int(row[f"{prefix}_n"] or 0)
    if n == 0:
        return 0, None, None
    total = exact_total(row, prefix, "sum")
    squares = exact_total(row, prefix, "square_sum")
    mean = total / n
    if n < 2:
        return n, float(mean), None
    variance = (squares - total * mean) / (n - 1)
    return n, float(mean), float(variance)
