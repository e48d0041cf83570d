"""A gateway tariff as a YKC billing model: four price tiers and the tier of each half hour (pure).

A YKC pile prices by at most four tiers (sharp, peak, flat, valley), each an energy rate and a service
rate in 1/100000 yuan per kWh, and one tier per half hour of the day. A gateway tariff fits when it has
at most four distinct (price, service fee) pairs and every period starts and ends on a half hour;
tiers are given by descending total price, so the dearest is "sharp". A tariff that does not fit
raises `ModelError`, saying why.
"""

from __future__ import annotations

import hashlib
from datetime import time
from decimal import Decimal
from typing import Any

import attrs

from ..billing.tariffs import Tariff
from .messages import TIERS

SLOTS = 48
_PER_FEN = 1000  # 1 fen per kWh = 0.01 yuan = 1000 units of 1/100000 yuan


class ModelError(ValueError):
    """A tariff that no YKC billing model can express."""


@attrs.frozen
class BillingModel:
    number: str  # four digits; "0000" is what a pile without a model says, so never that
    rates: tuple[tuple[int, int], ...]  # per tier: (energy, service) in fen per kWh
    slots: tuple[int, ...]  # the tier of each half hour, from midnight

    def fields(self, pile: str) -> dict[str, Any]:
        """The body of a 0x0A or 0x58 frame for `pile`."""
        body: dict[str, Any] = {"pile": pile, "model": self.number, "loss_ratio": 0, "slots": self.slots}
        for tier, (energy, service) in zip(TIERS, self.rates):
            body[f"{tier}_energy_rate"] = Decimal(energy).scaleb(-2)
            body[f"{tier}_service_rate"] = Decimal(service).scaleb(-2)
        return body


def _half_hour(moment: time, tariff: Tariff) -> int:
    if moment.second or moment.microsecond or moment.minute % 30:
        raise ModelError(f"tariff {tariff.name!r} changes price at {moment.isoformat('minutes')}: a YKC pile "
                         "changes price only on the hour or the half hour")
    return moment.hour * 2 + moment.minute // 30


def billing_model(tariff: Tariff) -> BillingModel:
    """The billing model of `tariff`, or ModelError."""
    pairs = {(period.price, tariff.fee(i)) for i, period in enumerate(tariff.periods)}
    if len(pairs) > len(TIERS):
        raise ModelError(f"tariff {tariff.name!r} has {len(pairs)} different prices: a YKC pile takes at most "
                         f"{len(TIERS)} (sharp, peak, flat, valley)")
    ordered = sorted(pairs, key=lambda pair: (-(pair[0] + pair[1]), -pair[0]))
    tier_of = {pair: index for index, pair in enumerate(ordered)}
    slots = [0] * SLOTS
    for i, period in enumerate(tariff.periods):
        first, end = _half_hour(period.start, tariff), _half_hour(period.end, tariff)
        count = (end - first) % SLOTS or SLOTS  # end <= start wraps past midnight; equal: all day
        for k in range(count):
            slots[(first + k) % SLOTS] = tier_of[(period.price, tariff.fee(i))]
    rates = tuple(ordered + [ordered[-1]] * (len(TIERS) - len(ordered)))  # unused tiers repeat the cheapest
    digest = hashlib.sha256(repr((rates, slots)).encode()).digest()
    number = int.from_bytes(digest[:4], "big") % 9999 + 1
    return BillingModel(f"{number:04d}", rates, tuple(slots))
