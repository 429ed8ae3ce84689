"""The simulators the sandbox mounts, and the deterministic demo payments they seed.

Invariants:
- ``SIMULATORS`` lists each provider simulator once; its ``key`` is both the URL prefix
  and the provider key of the CLI's accounts.
- ``DEMO_PAYMENTS`` is derived from the simulators' own ``demo`` tables, so the ids
  published here (used by ``examples/demo.csv`` and tests) are exactly the ones seeded.
"""

from __future__ import annotations

from typing import Final

from paycancel_cli.sandbox.base import ProviderSim
from paycancel_cli.sandbox.compago import CompagoSim
from paycancel_cli.sandbox.flex import FlexSim
from paycancel_cli.sandbox.flexportal import FlexPortalSim
from paycancel_cli.sandbox.hedgepayments import HedgePaymentsSim
from paycancel_cli.sandbox.vipps import VippsSim

SIMULATORS: Final[tuple[type[ProviderSim], ...]] = (
    FlexPortalSim,
    HedgePaymentsSim,
    FlexSim,
    VippsSim,
    CompagoSim,
)

DEMO_PAYMENTS: Final[dict[str, list[tuple[str, str]]]] = {
    sim.key: [(demo.payment_id, demo.description) for demo in sim.demo] for sim in SIMULATORS
}
