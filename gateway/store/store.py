"""The store's face: one `Store` with a typed object per table family, and `open_store`."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import trio

from .appender import ProcessAppender, ThreadAppender, appender_for
from .bills import Bills
from .chargers import Chargers
from .charging_profiles import ChargingProfiles
from .commands import Commands
from .configuration import Configuration
from .db import Database
from .frames import FrameLog
from .id_tags import IdTags
from .local_lists import LocalLists
from .notifications import Notifications
from .orders import Orders
from .payments import Payments
from .provider_certs import ProviderCerts
from .reservations import Reservations
from .tariffs import Tariffs
from .transactions import Transactions
from .users import Users


class Store:
    def __init__(self, db: Database, frames: FrameLog, appender: ProcessAppender | ThreadAppender | None = None):
        self.db = db
        self.health = db.health  # whether the file takes writes now: /health, /metrics, the handlers
        self.appender = appender or ThreadAppender(db)
        self.frames = frames
        self.chargers = Chargers(db)
        self.transactions = Transactions(db, self.appender)
        self.id_tags = IdTags(db)
        self.notifications = Notifications(db)
        self.commands = Commands(db)
        self.configuration = Configuration(db)
        self.local_lists = LocalLists(db)
        self.reservations = Reservations(db)
        self.charging_profiles = ChargingProfiles(db)
        self.users = Users(db)
        self.orders = Orders(db)
        self.payments = Payments(db)
        self.bills = Bills(db)
        self.provider_certs = ProviderCerts(db)
        self.tariffs = Tariffs(db)


@asynccontextmanager
async def open_store(path: str, *, flush_interval: float = 0.5, flush_size: int = 500,
                     retention_days: float = 30.0, check_max_mb: float = 256) -> AsyncIterator[Store]:
    """Open the database (checking and migrating it), run the frame-log and meter-value writer, close cleanly."""
    db = Database(path, check_max_mb=check_max_mb)
    await db.open()
    appender = appender_for(db)
    frames = FrameLog(db, flush_interval, flush_size, retention_days, appender)
    try:
        async with trio.open_nursery() as writer:
            await writer.start(appender.run)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(frames.run)
                    try:
                        yield Store(db, frames, appender)
                    finally:
                        nursery.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    await appender.close()  # after the frame log's last flush
    finally:
        with trio.CancelScope(shield=True):
            await db.close()
