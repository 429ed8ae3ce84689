"""Every status a simulator answers with is one its provider's documents list.

Each simulator is driven through what it models (reads and cancels of every demo payment
in every state, twice, an unknown id, rejected credentials, a bad request, its rate
limit) and every status it answered, per operation, must be in the provider's own list.
Vipps and FlexPortal are also held to their OpenAPI documents whole by
``tests/contract``; the three others have no machine-readable document, so their lists
are quoted from PROVIDERS.md's summaries of their pages.  Server errors (the ``fail``
fault's 500/502/503, an outage model) are left out.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sandbox_helpers import PROVIDERS, Api

from paycancel_cli.sandbox import Sandbox
from paycancel_cli.sandbox.seed import SIMULATORS

# (provider, operation) -> the statuses its documents list for it.
DOCUMENTED: dict[tuple[str, str], set[int]] = {
    # The cancel page's OpenAPI excerpt: 200, 400 (not cancellable, bad request), 404;
    # plus the overview's platform-wide 401, 403 and 429 (its generic table also names
    # 422 for an empty reason, but the operation's own excerpt says 400). Get and list:
    # the overview's generic statuses.
    ("flexportal", "cancel"): {200, 400, 401, 403, 404, 429},
    ("flexportal", "get"): {200, 400, 401, 403, 404, 429},
    ("flexportal", "list"): {200, 400, 401, 403, 429},
    # The reference's global table (and 401 on cancel, 404 not_found, 412, 409 for a
    # duplicate idempotency key).
    ("hedgepayments", "cancel"): {200, 400, 401, 403, 404, 409, 412, 422, 429},
    ("hedgepayments", "get"): {200, 400, 401, 403, 404, 429},
    # Flex documents no statuses per endpoint; Stripe's, which it mirrors.
    ("flex", "cancel"): {200, 400, 401, 404, 409, 429},
    ("flex", "get"): {200, 400, 401, 404, 429},
    # The ePayment spec for cancel (200, 400, 404, 409), plus the platform's 401, 403,
    # 423 and 429; get: 200 in the spec, 404 (5090) and the platform's statuses.
    ("vipps", "cancel"): {200, 400, 401, 403, 404, 409, 423, 429},
    ("vipps", "get"): {200, 400, 401, 403, 404, 429},
    ("vipps", "token"): {200, 400, 401, 429},
    # The cancel page: 400 "Cannot cancel payment intent", 404, 401; rate limits are not
    # documented, and the simulator only limits when told to.
    ("compago", "cancel"): {200, 400, 401, 404, 429},
    ("compago", "get"): {200, 400, 401, 404, 429},
}
UNKNOWN = {
    "flexportal": "fpay_unknown_01",
    "hedgepayments": "pay_unknown01",
    "flex": "fpi_unknown_01",
    "vipps": "unknown-reference-01",
    "compago": "7d3f0b4e-0000-4000-8000-0000000000ff",
}
WRONG_CREDENTIALS = {
    "flexportal": {"Authorization": "Bearer wrong"},
    "hedgepayments": {"Authorization": "Bearer sk_test_wrong"},
    "flex": {"Authorization": "Bearer fsk_test_wrong"},
    "vipps": {"Ocp-Apim-Subscription-Key": "wrong"},
    "compago": {"x-api-key": "wrong"},
}


def drive(api: Api, provider: str) -> None:
    sim = next(s for s in SIMULATORS if s.key == provider)
    ids = [demo.payment_id for demo in sim.demo] + [UNKNOWN[provider]]
    for payment_id in ids:
        api.get_payment(provider, payment_id)
        api.cancel(provider, payment_id)
        api.cancel(provider, payment_id)  # again: already cancelled, or a replay
        api.get_payment(provider, payment_id)
    api.get_payment(provider, ids[0], headers=WRONG_CREDENTIALS[provider])
    api.cancel(provider, ids[0], headers=WRONG_CREDENTIALS[provider])
    if provider == "flexportal":
        api.cancel(provider, ids[0], json={"reason": ""})  # no reason
        api.get(provider, "/v1/payments?rentalId=rent_demo_01&status=pending")
        api.get(provider, "/v1/payments?limit=1000")  # out of range
    if provider == "vipps":
        api.cancel(provider, ids[1], headers={"Idempotency-Key": f"test-{ids[0]}"})  # 409


def seen(sandbox: Sandbox, provider: str) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for request in sandbox.request_log:
        if request.provider == provider:
            out.setdefault(request.op, set()).add(request.status)
    return out


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_status_is_documented(
    make_sandbox: Callable[..., Sandbox], make_api: Callable[[Sandbox], Api], provider: str
) -> None:
    sandbox = make_sandbox()
    drive(make_api(sandbox), provider)
    limited = make_sandbox(requests_per_minute=2)
    drive(make_api(limited), provider)
    answered = seen(sandbox, provider)
    for op, statuses in seen(limited, provider).items():
        answered.setdefault(op, set()).update(statuses)
    assert 429 in set().union(*answered.values())
    for op, statuses in answered.items():
        assert statuses <= DOCUMENTED[(provider, op)], (provider, op, statuses)
