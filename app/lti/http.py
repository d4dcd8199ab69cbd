"""Outbound HTTP to platforms, and the platforms' key sets (fetched and cached per URL).

A key set is kept for `lti_jwks_cache_s`. A launch signed with a key id the cached set lacks (the platform
rotated its keys) fetches the set again at once, but at most once per `REFETCH_MIN_S` per URL, so forged
tokens with random key ids cannot make us hammer the platform.
"""

from __future__ import annotations

import functools
import ssl
import threading
import time
from dataclasses import dataclass

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

USER_AGENT = "gradax-lti/1"
MAX_JWKS_BYTES = 256 * 1024
REFETCH_MIN_S = 30.0


class PlatformUnreachable(Exception):
    """A platform endpoint did not answer usefully (network error, 5xx, not JSON)."""


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context of every outbound client (httpx's default trust: SSL_CERT_FILE/SSL_CERT_DIR or certifi).

    Building one parses the whole CA bundle, ~40 ms of a core; a new `httpx.Client` without it builds its own, and
    each passback, key set fetch and roster page opens a client. A context is safe to share between threads."""
    return httpx.create_ssl_context()


def client(timeout_s: float) -> httpx.Client:
    return httpx.Client(timeout=timeout_s, headers={"User-Agent": USER_AGENT}, follow_redirects=False,
                        verify=tls_context())


@dataclass
class _Cached:
    keys: KeySet
    fetched_at: float


class PlatformKeyCache:
    """Thread-safe cache of platform key sets, shared by every request of the app."""

    def __init__(self, *, ttl_s: float, timeout_s: float):
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._sets: dict[str, _Cached] = {}
        self.fetches = 0  # how many times a set was downloaded (tests check the cache holds)

    def key_for(self, jwks_url: str, kid: str | None) -> RSAKey:
        """The platform's public key with this kid; KeyError when the platform does not have it."""
        now = time.monotonic()
        with self._lock:
            cached = self._sets.get(jwks_url)
        if cached is None or now - cached.fetched_at > self.ttl_s:
            cached = self._fetch(jwks_url)
        key = _find(cached.keys, kid)
        if key is None and now - cached.fetched_at > REFETCH_MIN_S:
            cached = self._fetch(jwks_url)
            key = _find(cached.keys, kid)
        if key is None:
            raise KeyError(f"the platform's key set ({jwks_url}) has no RSA key with kid {kid!r}")
        return key

    def _fetch(self, jwks_url: str) -> _Cached:
        try:
            with client(self.timeout_s) as http:
                response = http.get(jwks_url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise PlatformUnreachable(f"cannot fetch the platform's key set from {jwks_url}: {exc}") from exc
        if response.status_code != 200 or len(response.content) > MAX_JWKS_BYTES:
            raise PlatformUnreachable(f"the platform's key set at {jwks_url} answered HTTP {response.status_code}")
        try:
            data = response.json()
            keys = KeySet.import_key_set({"keys": [k for k in data["keys"] if k.get("kty") == "RSA"]})
        except (ValueError, KeyError, TypeError, AttributeError, JoseError) as exc:
            raise PlatformUnreachable(f"the platform's key set at {jwks_url} is not a JWK set: {exc}") from exc
        cached = _Cached(keys, time.monotonic())
        with self._lock:
            self._sets[jwks_url] = cached
            self.fetches += 1
        return cached


def _find(keys: KeySet, kid: str | None) -> RSAKey | None:
    for key in keys:
        if isinstance(key, RSAKey) and key.kid == kid and key.get("use", "sig") == "sig":
            return key
    return None
