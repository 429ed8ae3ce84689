"""One provider lives in three places: its adapter module (the adapter and its account
class), its simulator module and one line of the registry.  Everything else follows
the registry, so no other module of the package names a provider."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from paycancel_cli.providers import ADAPTERS, account_type, adapter_class, probes
from paycancel_cli.providers.accounts import AccountBase
from paycancel_cli.sandbox import SANDBOX_CREDENTIALS, Sandbox
from paycancel_cli.sandbox.seed import SIMULATORS

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "paycancel_cli"
# Modules that follow the registry and so must not name a provider.
FOLLOWERS = (
    "config.py",
    "preflight.py",
    "httpclient.py",
    "session.py",
    "completion.py",
    "providers/accounts.py",
    "providers/base.py",
    "sandbox/base.py",
    "sandbox/seed.py",
    "sandbox/state.py",
)


@pytest.mark.parametrize("key", list(ADAPTERS))
def test_each_registered_provider_brings_its_account_probe_and_simulator(key: str) -> None:
    adapter = adapter_class(key)
    assert adapter.key == key
    assert issubclass(account_type(key), AccountBase)
    assert get_args(account_type(key).model_fields["provider"].annotation) == (key,)
    assert probes()[key].startswith(("GET ", "POST "))
    assert [sim.key for sim in SIMULATORS].count(key) == 1
    assert key in SANDBOX_CREDENTIALS


def test_the_sandbox_mounts_the_registry_in_its_order() -> None:
    assert [sim.key for sim in SIMULATORS] == list(ADAPTERS)
    with Sandbox() as sb:
        assert list(sb.account_config()) == list(ADAPTERS)


@pytest.mark.parametrize("module", FOLLOWERS)
def test_modules_that_follow_the_registry_name_no_provider(module: str) -> None:
    text = (PACKAGE / module).read_text()
    code = re.sub(r'"""(?:.|\n)*?"""|#[^\n]*', "", text)  # prose may name them
    named = [key for key in ADAPTERS if re.search(rf"\b{key}\b", code, re.IGNORECASE)]
    assert named == [], f"{module} names {named}: declare it in the provider's modules"
