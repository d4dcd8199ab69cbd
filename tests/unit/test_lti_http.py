"""Outbound clients to LTI platforms share one TLS context, built once with httpx's default trust."""

from __future__ import annotations

import ssl

from app.lti.http import client, tls_context


def _context_of(http: object) -> ssl.SSLContext:
    return http._transport._pool._ssl_context  # type: ignore[attr-defined]  # httpx -> httpcore pool


def test_every_client_uses_the_one_context_and_it_verifies_platforms() -> None:
    with client(1.0) as first, client(5.0) as second:
        assert _context_of(first) is tls_context()
        assert _context_of(second) is tls_context()
    context = tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # a CA bundle is loaded: https platforms can be verified
