"""Shared helpers of the sandbox tests (a uniquely named module, imported by conftest and tests)."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from paycancel_cli.sandbox import Sandbox

# The sandbox is plain HTTP; one bare TLS context spares every httpx.Client loading CAs.
_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def http_client(timeout: float = 5.0) -> httpx.Client:
    return httpx.Client(timeout=timeout, verify=_TLS)


PROVIDERS = ("flexportal", "hedgepayments", "flex", "vipps", "compago")

# For each provider: (path of a payment, path of its cancel) for a cancelable demo payment.
CANCELABLE_DEMO = {
    "flexportal": "fpay_demo_pending_01",
    "hedgepayments": "pay_demopending01",
    "flex": "fpi_demo_requires_payment_method_01",
    "vipps": "demo-authorized-0001",
    "compago": "7d3f0b4e-0000-4000-8000-000000000001",
}
PAYMENT_PATHS = {
    "flexportal": "/v1/payments/{id}",
    "hedgepayments": "/v1/payments/{id}",
    "flex": "/v1/payment_intents/{id}",
    "vipps": "/epayment/v1/payments/{id}",
    "compago": "/api/payment-intent/{id}",
}


class Api:
    """Calls one sandbox with valid credentials unless told otherwise."""

    def __init__(self, sandbox: Sandbox, client: httpx.Client) -> None:
        self.sandbox = sandbox
        self.client = client
        self.accounts = sandbox.account_config()
        self._vipps_token: str | None = None

    def vipps_token(self, *, fresh: bool = False) -> str:
        if self._vipps_token is None or fresh:
            account = self.accounts["vipps"]
            response = self.client.post(
                account["base_url"] + "/accesstoken/get",
                headers={
                    "client_id": account["client_id"],
                    "client_secret": account["client_secret"],
                    "Ocp-Apim-Subscription-Key": account["subscription_key"],
                },
            )
            assert response.status_code == 200, response.text
            self._vipps_token = response.json()["access_token"]
        return self._vipps_token

    def auth_headers(self, provider: str) -> dict[str, str]:
        account = self.accounts[provider]
        if provider == "flexportal":
            return {
                "Authorization": f"Bearer {account['api_key']}",
                "Tenant-ID": account["tenant_id"],
            }
        if provider in ("hedgepayments", "flex"):
            return {"Authorization": f"Bearer {account['api_key']}"}
        if provider == "vipps":
            return {
                "Authorization": f"Bearer {self.vipps_token()}",
                "Ocp-Apim-Subscription-Key": account["subscription_key"],
                "Merchant-Serial-Number": account["merchant_serial_number"],
            }
        return {"x-api-key": account["api_key"]}

    def request(
        self,
        method: str,
        provider: str,
        path: str,
        *,
        headers: dict[str, str | None] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        merged: dict[str, str | None] = {**self.auth_headers(provider), **(headers or {})}
        sent = {name: value for name, value in merged.items() if value is not None}
        url = self.accounts[provider]["base_url"] + path
        return self.client.request(method, url, headers=sent, **kwargs)

    def get(self, provider: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", provider, path, **kwargs)

    def post(self, provider: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", provider, path, **kwargs)

    def get_payment(self, provider: str, payment_id: str, **kwargs: Any) -> httpx.Response:
        return self.get(provider, PAYMENT_PATHS[provider].format(id=payment_id), **kwargs)

    def cancel(self, provider: str, payment_id: str, **kwargs: Any) -> httpx.Response:
        """A valid cancel request for the provider (reason / idempotency key filled in)."""
        path = PAYMENT_PATHS[provider].format(id=payment_id) + "/cancel"
        headers: dict[str, str | None] = dict(kwargs.pop("headers", None) or {})
        if provider == "flexportal" and "json" not in kwargs and "content" not in kwargs:
            kwargs["json"] = {"reason": "sandbox test"}
        if provider == "vipps":
            headers.setdefault("Idempotency-Key", f"test-{payment_id}")
        return self.post(provider, path, headers=headers, **kwargs)
