"""What the HTTP handlers work with, given to create_app() as one typed object and reached through
services() while a request is handled."""

from __future__ import annotations

from datetime import timezone, tzinfo
from typing import TYPE_CHECKING

import attrs
from quart import current_app

from ..config import Config, ConsoleConfig

if TYPE_CHECKING:
    from ..billing.orders import OrderBook
    from ..billing.payments import PaymentService
    from ..chargepoint.commands import CommandService
    from ..chargepoint.service import ChargerService
    from ..monitoring.monitor import Monitor
    from .accounts import Auth


def _default(name: str) -> object:
    """The configuration's own default: the HTTP side has none of its own."""
    return attrs.fields_dict(Config)[name].default


@attrs.frozen
class Limits:
    """What the configuration bounds; the OpenAPI document states the same values."""

    max_page_size: int = _default("http_max_page_size")  # larger page sizes: 400
    max_body_bytes: int = _default("http_max_body_bytes")  # larger bodies: 413

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        return cls(config.http_max_page_size, config.http_max_body_bytes)


@attrs.frozen
class Billing:
    orders: OrderBook
    payments: PaymentService


@attrs.frozen
class Services:
    chargers: ChargerService
    commands: CommandService
    auth: Auth
    billing: Billing | None = None  # None: billing.enabled = false (its routes answer 404)
    limits: Limits = Limits()
    monitor: Monitor | None = None  # alerts, figures and the kept log (/api/monitoring)
    zone: tzinfo = timezone.utc  # billing.timezone: the site's days (the dashboard's)
    console: ConsoleConfig = attrs.field(factory=ConsoleConfig)  # the live stream's buffers (/api/live)


def services() -> Services:
    """The services of the app handling the current request."""
    return current_app.services  # type: ignore[attr-defined]  # set by create_app
