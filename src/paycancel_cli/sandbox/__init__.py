"""Local simulators of the five payment providers, served over real HTTP on loopback.

Used by ``paycancel sandbox``, the ``--sandbox`` flag, the test suite and the
benchmarks. Standard library only, so it starts fast and can drop connections at will.

Invariants:
- ``Sandbox`` is the only entry point; the provider modules are its implementation.
- ``DEMO_PAYMENTS`` lists exactly the payments a ``Sandbox(seed_demo=True)`` seeds.
- ``SANDBOX_CREDENTIALS`` are test-only values; a ``Sandbox`` copies them and never
  prints them (nor the overrides passed as ``credentials``).
"""

from paycancel_cli.sandbox.seed import DEMO_PAYMENTS, SANDBOX_CREDENTIALS
from paycancel_cli.sandbox.server import Sandbox
from paycancel_cli.sandbox.state import Faults, RecordedRequest

__all__ = ["DEMO_PAYMENTS", "SANDBOX_CREDENTIALS", "Faults", "RecordedRequest", "Sandbox"]
