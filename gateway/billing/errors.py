"""What billing can refuse, as types the HTTP layer turns into answers."""

from __future__ import annotations


class CallbackRefused(Exception):
    """A provider callback failed a check (signature, time, fields, our records); nothing changes."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ProviderError(Exception):
    """A call out to a payment provider failed: no answer, an error answer, or a badly signed one."""


class BillingConflict(Exception):
    """A state change the order or payment rules do not allow (HTTP 409)."""


class ProviderRefused(ProviderError):
    """The provider answered, verifiably, that it will not do what was asked (a business error, such
    as a refund beyond the refundable amount): asking again unchanged gets the same answer."""
