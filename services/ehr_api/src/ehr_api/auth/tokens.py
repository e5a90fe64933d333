"""Bearer tokens: issue HS256 tokens for the embedded install, verify them or an IdP's.

Two sources of trust, possibly at once, told apart by the token's `alg` header:

- HS256 with a shared secret (`EHR_JWT_SECRET`): what `ehr-platform token` and
  `ehr-platform up` hand out, with no identity provider to run;
- RS256/ES256 with public keys from a JWKS URL (`EHR_JWT_JWKS_URL`): an external
  identity provider. Keys are looked up by `kid` (see `ehr_api.auth.jwks`).

The algorithm list is fixed per source, never taken from the token, so an RS256 public
key can never be replayed as an HMAC secret (the classic "alg confusion").

Claims: `sub` (who), `org` (organisation slug or id), `roles` (list of role names),
`exp`, `iat`; `iss`/`aud` when configured. `org` may be absent only when the roles include
a global one (a platform administrator belongs to no organisation).

Errors (all `TokenError`, an `AuthenticationError`, so the error handler answers 401)::

    TokenError
     +-- TokenMalformedError   not a JWT at all, or an unexpected header
     +-- TokenSignatureError   signature does not match
     +-- TokenExpiredError     past `exp` (plus leeway)
     +-- TokenClaimsError      a claim is missing, malformed, or not for us (iss/aud/nbf)
     +-- TokenKeyError         no key to check it with (unknown kid, JWKS down, alg refused)
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from ehr_api.auth.jwks import JwksCache, JwksError
from ehr_api.auth.principal import GLOBAL_ROLES
from ehr_api.errors import AuthenticationError

__all__ = [
    "DEFAULT_LEEWAY",
    "DEFAULT_TTL",
    "JWKS_ALGORITHMS",
    "TokenClaims",
    "TokenClaimsError",
    "TokenError",
    "TokenExpiredError",
    "TokenKeyError",
    "TokenMalformedError",
    "TokenSignatureError",
    "TokenVerifier",
    "issue_token",
    "parse_ttl",
]

DEFAULT_TTL = timedelta(hours=1)
DEFAULT_LEEWAY = timedelta(seconds=30)
HMAC_ALGORITHM = "HS256"
JWKS_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256")
#: RFC 7518 §3.2: an HS256 key shorter than the hash output weakens the MAC.
MIN_SECRET_BYTES = 32
_REQUIRED = ("sub", "exp", "iat")
_TTL = re.compile(r"(\d+)\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class TokenError(AuthenticationError):
    """A bearer token was refused (401); `code` is a stable machine-readable reason."""

    code = "invalid_token"


class TokenMalformedError(TokenError):
    code = "malformed_token"


class TokenSignatureError(TokenError):
    code = "bad_signature"


class TokenExpiredError(TokenError):
    code = "token_expired"


class TokenClaimsError(TokenError):
    code = "invalid_claims"


class TokenKeyError(TokenError):
    code = "unknown_key"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The verified content of a token, typed; `raw` keeps every claim for the curious."""

    subject: str
    org: str | None
    roles: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    token_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


def parse_ttl(text: str) -> timedelta:
    """`"90s"`, `"15m"`, `"1h"`, `"7d"` or plain seconds, as the CLI's `--ttl` takes them.

    Raises:
        ValueError: not one of those forms, or zero.

    >>> parse_ttl("1h")
    datetime.timedelta(seconds=3600)
    """
    match = _TTL.fullmatch(text.strip().lower())
    if match is None or int(match[1]) == 0:
        raise ValueError(f"ttl {text!r}: expected a positive number with s, m, h or d")
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def issue_token(
    subject: str,
    org: str | None,
    roles: Iterable[str],
    secret: str | bytes,
    ttl: timedelta = DEFAULT_TTL,
    *,
    issuer: str | None = None,
    audience: str | None = None,
    now: datetime | None = None,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """Sign an HS256 token for `subject` in `org` with `roles`, valid for `ttl`.

    Each token gets a random `jti` so audit rows can tell two tokens of one user apart.

    Raises:
        ValueError: empty subject, non-positive ttl, or a secret shorter than 32 bytes.
    """
    if not subject:
        raise ValueError("subject must not be empty")
    if ttl <= timedelta(0):
        raise ValueError("ttl must be positive")
    key = _hmac_key(secret)
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    claims: dict[str, Any] = dict(extra_claims or {})
    claims.update(
        sub=subject,
        roles=list(roles),
        iat=issued,
        exp=issued + ttl,
        jti=secrets.token_urlsafe(12),
    )
    if org is not None:
        claims["org"] = org
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, key, algorithm=HMAC_ALGORITHM)


class TokenVerifier:
    """Checks bearer tokens against a shared secret, a JWKS URL, or both.

    Build one per process (it holds the JWKS cache and an HTTP client) and `close()` it on
    shutdown. `verify` is cheap when the key is cached: no I/O on the hot path.

        verifier = TokenVerifier(secret=settings.jwt_secret)
        claims = verifier.verify(token)
    """

    def __init__(
        self,
        *,
        secret: str | bytes | None = None,
        jwks_url: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        leeway: timedelta = DEFAULT_LEEWAY,
        jwks_algorithms: Iterable[str] = JWKS_ALGORITHMS,
        jwks_cache_ttl: float = 300.0,
        jwks_cooldown: float = 30.0,
        jwks_timeout: float = 5.0,
    ) -> None:
        if secret is None and jwks_url is None:
            raise ValueError("configure a secret, a JWKS URL, or both")
        self._secret = None if secret is None else _hmac_key(secret)
        self._jwks = (
            None
            if jwks_url is None
            else JwksCache(
                jwks_url, ttl=jwks_cache_ttl, cooldown=jwks_cooldown, timeout=jwks_timeout
            )
        )
        self._jwks_algorithms = frozenset(jwks_algorithms)
        if HMAC_ALGORITHM in self._jwks_algorithms or "none" in self._jwks_algorithms:
            raise ValueError("JWKS algorithms must be asymmetric")
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway

    def verify(self, token: str) -> TokenClaims:
        """The claims of `token` if it is genuine, current and ours.

        May fetch the JWKS (blocking) when the key is not cached; async code should prefer
        `verify_async`.

        Raises:
            TokenError: one of the subclasses in the module docstring.
        """
        alg, kid = self._header(token)
        if alg == HMAC_ALGORITHM:
            return self._decode(token, self._hmac_secret(), alg)
        jwks = self._jwks_for(alg)
        try:
            key = jwks.key(kid)
        except JwksError as exc:
            raise TokenKeyError(str(exc)) from exc
        return self._decode(token, self._checked_key(key, alg), alg)

    async def verify_async(self, token: str) -> TokenClaims:
        """`verify`, fetching the JWKS (when needed) without blocking the event loop.

        Raises:
            TokenError: one of the subclasses in the module docstring.
        """
        alg, kid = self._header(token)
        if alg == HMAC_ALGORITHM:
            return self._decode(token, self._hmac_secret(), alg)
        jwks = self._jwks_for(alg)
        try:
            key = await jwks.key_async(kid)
        except JwksError as exc:
            raise TokenKeyError(str(exc)) from exc
        return self._decode(token, self._checked_key(key, alg), alg)

    def close(self) -> None:
        """Release the JWKS HTTP client (sync side)."""
        if self._jwks is not None:
            self._jwks.close()

    async def aclose(self) -> None:
        """Release both JWKS HTTP clients."""
        if self._jwks is not None:
            await self._jwks.aclose()

    def __enter__(self) -> TokenVerifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _header(self, token: str) -> tuple[str, str | None]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise TokenMalformedError(f"not a JWT: {exc}") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or (kid is not None and not isinstance(kid, str)):
            raise TokenMalformedError("token header needs a string 'alg' (and 'kid' if any)")
        return alg, kid

    def _hmac_secret(self) -> bytes:
        if self._secret is None:
            raise TokenKeyError("HS256 tokens are not accepted: no shared secret configured")
        return self._secret

    def _jwks_for(self, alg: str) -> JwksCache:
        if self._jwks is None or alg not in self._jwks_algorithms:
            accepted = sorted(self._jwks_algorithms) if self._jwks else []
            accepted += [HMAC_ALGORITHM] if self._secret is not None else []
            raise TokenKeyError(f"algorithm {alg!r} is not accepted (accepted: {accepted})")
        return self._jwks

    @staticmethod
    def _checked_key(key: jwt.PyJWK, alg: str) -> Any:
        # A JWK that declares (or implies) another algorithm must not verify this token.
        if key.algorithm_name != alg:
            raise TokenKeyError(
                f"key {key.key_id!r} is for {key.algorithm_name}, token is signed with {alg}"
            )
        return key.key

    def _decode(self, token: str, key: Any, alg: str) -> TokenClaims:
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": [*_REQUIRED, *(["iss"] if self.issuer else [])]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpiredError("token has expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenSignatureError("token signature does not match") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise TokenClaimsError(f"missing claim: {exc.claim}") from exc
        except jwt.InvalidAudienceError as exc:
            hint = "" if self.audience else " (none is configured: set EHR_JWT_AUDIENCE)"
            raise TokenClaimsError(f"token is not for this audience{hint}: {exc}") from exc
        except (jwt.InvalidIssuerError, jwt.ImmatureSignatureError) as exc:
            raise TokenClaimsError(str(exc)) from exc
        except jwt.DecodeError as exc:
            raise TokenMalformedError(f"token cannot be decoded: {exc}") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenClaimsError(str(exc)) from exc
        return _claims(payload)


def _claims(payload: dict[str, Any]) -> TokenClaims:
    """Type-check the claims the platform relies on; PyJWT only checked presence."""
    subject = payload["sub"]
    if not isinstance(subject, str) or not subject:
        raise TokenClaimsError("claim 'sub' must be a non-empty string")
    if "roles" not in payload:
        raise TokenClaimsError("missing claim: roles")
    roles = payload["roles"]
    if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
        raise TokenClaimsError("claim 'roles' must be a list of role names")
    org = payload.get("org")
    if org is not None and (not isinstance(org, str) or not org):
        raise TokenClaimsError("claim 'org' must be a non-empty string (slug or id)")
    if org is None and GLOBAL_ROLES.isdisjoint(roles):
        raise TokenClaimsError("missing claim: org (only global roles may omit it)")
    token_id = payload.get("jti")
    return TokenClaims(
        subject=subject,
        org=org,
        roles=tuple(roles),
        issued_at=datetime.fromtimestamp(payload["iat"], UTC),
        expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        token_id=token_id if isinstance(token_id, str) else None,
        raw=payload,
    )


def _hmac_key(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes")
    return key
