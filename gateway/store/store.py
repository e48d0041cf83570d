"""The store's face: one `Store` with a typed object per table family, and `open_store`."""

from __future__ import annotations

import inspect
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import trio

from .appender import Appender, ThreadAppender, appender_for
from .audit import AuditLog
from .bills import Bills
from .calls import Table
from .certificates import Certificates
from .chargers import Chargers
from .charging_profiles import ChargingProfiles
from .charger_tests import ChargerTests
from .commands import Commands
from .configuration import Configuration
from .dashboard import Dashboard
from .db import Database
from .pg.connection import is_url
from .pg.database import PgDatabase
from .frame_log import FrameLog
from .id_tags import IdTags
from .local_lists import LocalLists
from .logbook import LogLines
from .alerts import Alerts
from .monitoring import Monitoring
from .notifications import Notifications
from .orders import Orders
from .payments import Payments
from .provider_certs import ProviderCerts
from .registry import ChargerRegistry
from .reservations import Reservations
from .retention import Retention
from .stations import Stations
from .tariffs import Tariffs
from .tenants import Tenants
from .transactions import Transactions
from .users import Users
from .ykc import YkcSessions


class Store:
    """The database, its health, the appender (frames and meter values), and a Table per family of tables."""

    chargers: Chargers
    transactions: Transactions
    id_tags: IdTags
    notifications: Notifications
    commands: Commands
    configuration: Configuration
    local_lists: LocalLists
    reservations: Reservations
    charging_profiles: ChargingProfiles
    users: Users
    orders: Orders
    payments: Payments
    bills: Bills
    provider_certs: ProviderCerts
    tariffs: Tariffs
    stations: Stations
    registry: ChargerRegistry
    tenants: Tenants
    ykc_sessions: YkcSessions
    certificates: Certificates
    alerts: Alerts
    monitoring: Monitoring
    log_lines: LogLines
    audit: AuditLog
    dashboard: Dashboard
    charger_tests: ChargerTests  # charger test runs (gateway/chargertest)
    retention: Retention  # old rows pruned, meter values thinned (rules added by app.py and features)

    def __init__(self, db: Database, frames: FrameLog, appender: Appender | None = None):
        self.db = db
        self.health = db.health  # whether the file takes writes now: /health, /metrics, the handlers
        self.appender = appender or ThreadAppender(db)
        self.frames = frames
        for name, table in TABLES.items():
            setattr(self, name, table(db, self.appender))
        self.registry._changed = self.chargers._forget_availability


# The table families, by the attribute that holds each (read from the annotations above, in their order).
TABLES: dict[str, type[Table]] = {name: kind for name, kind in inspect.get_annotations(Store, eval_str=True).items()
                                  if isinstance(kind, type) and issubclass(kind, Table)}


@asynccontextmanager
async def open_store(path: str, *, flush_interval: float = 0.5, flush_size: int = 500,
                     retention_days: float = 30.0, check_max_mb: float = 256,
                     unwritten_folder: str = "") -> AsyncIterator[Store]:
    """Open the database (checking and migrating it), run the frame-log and meter-value writer, close cleanly.

    `path`: a SQLite file, or a PostgreSQL server's postgresql:// URL (gateway/store/pg/). `unwritten_folder`, on
    a server: where the rows it cannot take at close are kept, and shipped from at the next open (unwritten.py)."""
    db = PgDatabase(path) if is_url(path) else Database(path, check_max_mb=check_max_mb)
    await db.open()
    appender = appender_for(db, Path(unwritten_folder) if unwritten_folder else None)
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
