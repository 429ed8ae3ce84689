"""The simulators the sandbox mounts, and the deterministic demo payments they seed.

Invariants:
- ``SIMULATORS`` lists each registered provider's simulator once; its ``key`` is both
  the URL prefix and the provider key of the CLI's accounts.
- ``DEMO_PAYMENTS`` is derived from the simulators' own ``demo`` tables, so the ids
  published here (used by ``examples/demo.csv`` and tests) are exactly the ones seeded.
"""

from __future__ import annotations

import importlib
from typing import Final

from paycancel_cli.providers import ADAPTERS
from paycancel_cli.sandbox.base import ProviderSim


def _simulator(provider: str) -> type[ProviderSim]:
    """The simulator of ``provider``: the ``ProviderSim`` of that key in the module of
    the same name (``paycancel_cli.sandbox.<provider>``)."""
    module = importlib.import_module(f"paycancel_cli.sandbox.{provider}")
    (found,) = (
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, ProviderSim)
        and getattr(value, "key", None) == provider
    )
    return found


# One per registered provider, in the registry's order.
SIMULATORS: Final[tuple[type[ProviderSim], ...]] = tuple(_simulator(key) for key in ADAPTERS)

# The sandbox's test-only credentials, a template: a ``Sandbox`` deep-copies it, so
# nothing a caller passes in can change it, and no credential is ever printed or logged.
SANDBOX_CREDENTIALS: Final[dict[str, dict[str, str]]] = {
    sim.key: dict(sim.credentials) for sim in SIMULATORS
}

DEMO_PAYMENTS: Final[dict[str, list[tuple[str, str]]]] = {
    sim.key: [(demo.payment_id, demo.description) for demo in sim.demo] for sim in SIMULATORS
}
