"""Contract fixtures: every test here runs once per backend in ``RIG_BUILDERS``.

``backend_name`` is the single parametrized fixture; add a backend by adding
its rig builder to ``tests.contract.rigs.RIG_BUILDERS``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator

import pytest

from hal.interfaces import BoardSettings
from tests.contract.rigs import RIG_BUILDERS, MakeRig, OpenRig, Rig, open_rig


@pytest.fixture(params=sorted(RIG_BUILDERS))
def backend_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def rig_opener(backend_name: str) -> OpenRig:
    """``async with rig_opener(connectors=2, board=..., **options) as rig`` (for hypothesis)."""
    return functools.partial(open_rig, backend_name)


@pytest.fixture
async def make_rig(rig_opener: OpenRig) -> AsyncIterator[MakeRig]:
    """Build a started rig; all are closed (and their ``run()`` checked) at teardown."""
    async with contextlib.AsyncExitStack() as stack:

        async def factory(
            connectors: int = 1, board: BoardSettings | None = None, **options: object
        ) -> Rig:
            return await stack.enter_async_context(
                rig_opener(connectors=connectors, board=board, **options)
            )

        yield factory


@pytest.fixture
async def rig(make_rig: MakeRig) -> Rig:
    """Two connectors, three phases, lock and BMS: the default station."""
    return await make_rig(connectors=2)
