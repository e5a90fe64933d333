"""The signing keys of an external identity provider, fetched from its JWKS URL and cached.

Why not PyJWT's `PyJWKClient`: it fetches with blocking `urllib`, which would stall the
event loop of an async app. This cache fetches with httpx, sync or async, so the verifier
can offer both without a thread hop per request.

Refresh rules, chosen so a key rotation at the provider is picked up quickly while a
flood of tokens with made-up `kid`s cannot turn into a flood of requests to the provider:

- the set is re-fetched when it is older than `ttl`, or when a token names a `kid` the
  cache does not know (the provider may just have rotated);
- no two fetches start within `cooldown` seconds of each other, whatever the reason;
- when a fetch fails, the keys already held stay in use (a provider outage must not log
  everyone out), and the failure surfaces only if the wanted key is still missing.

Only asymmetric signing keys are kept: a symmetric (`oct`) key published at a URL would
let anyone who can read the URL mint tokens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import jwt

__all__ = ["JwksCache", "JwksError"]

log = logging.getLogger(__name__)

_ASYMMETRIC_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


class JwksError(Exception):
    """No usable signing key: the JWKS URL failed, or it does not hold the wanted key."""


class JwksCache:
    """Signing keys by `kid`, loaded from `url` on demand (see the module docstring).

    Thread-safe for the sync path (FastAPI may run sync dependencies in a thread pool);
    the async path relies on the cooldown, which is claimed before the first await, so
    concurrent coroutines do not stampede the provider.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 300.0,
        cooldown: float = 30.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0 or cooldown < 0:
            raise ValueError("ttl must be > 0 and cooldown >= 0")
        self.url = url
        self._ttl = ttl
        self._cooldown = cooldown
        self._timeout = timeout
        self._clock = clock
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at = float("-inf")
        self._last_error: Exception | None = None
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._async_client: httpx.AsyncClient | None = None

    @property
    def kids(self) -> frozenset[str | None]:
        """The key ids currently held (for diagnostics and tests)."""
        return frozenset(self._keys)

    def key(self, kid: str | None) -> jwt.PyJWK:
        """The key for `kid`, fetching the set first when the rules above call for it.

        Raises:
            JwksError: the key is unknown even after a permitted fetch.
        """
        with self._lock:
            if self._claim_fetch(kid):
                try:
                    self._store(self._get_sync())
                except (httpx.HTTPError, ValueError) as exc:
                    self._failed(exc)
        return self._lookup(kid)

    async def key_async(self, kid: str | None) -> jwt.PyJWK:
        """`key`, fetching with an async client so the event loop keeps running.

        Raises:
            JwksError: the key is unknown even after a permitted fetch.
        """
        if self._claim_fetch(kid):
            try:
                self._store(await self._get_async())
            except (httpx.HTTPError, ValueError) as exc:
                self._failed(exc)
        return self._lookup(kid)

    def close(self) -> None:
        """Close the sync HTTP client (the async one needs `aclose`)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close both HTTP clients."""
        self.close()
        if self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None

    def _claim_fetch(self, kid: str | None) -> bool:
        now = self._clock()
        if now - self._attempted_at < self._cooldown:
            return False
        stale = self._fetched_at is None or now - self._fetched_at >= self._ttl
        if not stale and self._has(kid):
            return False
        self._attempted_at = now
        return True

    def _has(self, kid: str | None) -> bool:
        return kid in self._keys or (kid is None and len(self._keys) == 1)

    def _failed(self, exc: Exception) -> None:
        self._last_error = exc
        log.warning("fetching JWKS from %s failed: %s", self.url, exc)

    def _lookup(self, kid: str | None) -> jwt.PyJWK:
        found = self._keys.get(kid)
        if found is None and kid is None and len(self._keys) == 1:
            # A token without `kid` is acceptable only when the choice is unambiguous.
            found = next(iter(self._keys.values()))
        if found is not None:
            return found
        if self._last_error is not None:
            error = self._last_error
            raise JwksError(f"could not fetch signing keys from {self.url}: {error}") from error
        if kid is None:
            raise JwksError("token has no 'kid' header and the JWKS holds several keys")
        raise JwksError(f"no signing key with kid {kid!r} at {self.url}")

    def _get_sync(self) -> Any:
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout)
        response = self._client.get(self.url, headers={"Accept": "application/json"})
        response.raise_for_status()
        return response.json()

    async def _get_async(self) -> Any:
        if self._async_client is None:
            self._async_client = httpx.AsyncClient(timeout=self._timeout)
        response = await self._async_client.get(self.url, headers={"Accept": "application/json"})
        response.raise_for_status()
        return response.json()

    def _store(self, document: Any) -> None:
        """Replace the held keys with the usable signing keys of `document`.

        Raises:
            ValueError: the document is not a JWK Set or holds no usable key.
        """
        raw_keys = document.get("keys") if isinstance(document, Mapping) else None
        if not isinstance(raw_keys, list):
            raise ValueError("response is not a JWK Set (no 'keys' list)")
        keys: dict[str | None, jwt.PyJWK] = {}
        for raw in raw_keys:
            if not isinstance(raw, Mapping) or raw.get("kty") not in _ASYMMETRIC_KEY_TYPES:
                continue
            if raw.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(dict(raw))
            except jwt.PyJWTError as exc:
                log.info("skipping unusable JWK %r: %s", raw.get("kid"), exc)
                continue
            keys[key.key_id] = key
        if not keys:
            raise ValueError("JWK Set holds no usable signing key")
        self._keys = keys
        self._fetched_at = self._clock()
        self._last_error = None
