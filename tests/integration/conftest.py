from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest
import trio

from gateway.config import Config
from tests.billing.fixtures import provider_config
from tests.billing.standin import ProviderKeys, StandIn
from tests.conftest import Gateway, started


@pytest.fixture
def billing_config(tmp_path: Path, provider_keys: ProviderKeys, standin: StandIn) -> Config:
    """Both payment providers configured, played by the stand-in (a module may override `standin`)."""
    return provider_config(tmp_path, provider_keys, standin)


@pytest.fixture
async def gw(nursery: trio.Nursery, billing_config: Config) -> AsyncIterator[Gateway]:
    """A gateway running with `billing_config`."""
    async with started(nursery, billing_config) as gateway:
        yield gateway
