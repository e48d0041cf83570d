"""What the gateway keeps for charger test runs besides the runs themselves: the prompts waiting for a
person (manual.Prompts) and the file server (files.FileServer). Made once by the gateway (gateway/app.py),
given to the runs and to the routes that answer prompts and serve reports."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import attrs
import trio

from ..config import ChargerTestFilesConfig
from .files import FileServer
from .manual import Prompts


@attrs.frozen
class Tools:
    prompts: Prompts
    files: FileServer

    @classmethod
    def start(cls, config: ChargerTestFilesConfig, db: str, hub: Any, nursery: trio.Nursery) -> Tools:
        """The tools of a gateway: prompts published on `hub`; the file server's folder (charger-tests beside
        the database file unless configured) and its listeners, started in `nursery` when a run needs them."""
        if not config.folder:
            beside = Path(db).parent if db != ":memory:" and "://" not in db else Path(tempfile.gettempdir())
            config = attrs.evolve(config, folder=str(beside / "charger-tests"))
        files = FileServer.from_config(config)
        files.attach(nursery)
        return cls(Prompts(hub), files)
