"""Bearer tokens: HS256 issue/verify, and RS256/ES256 against a JWKS on a real HTTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from ehr_api.auth.tokens import (
    TokenClaimsError,
    TokenExpiredError,
    TokenKeyError,
    TokenMalformedError,
    TokenSignatureError,
    TokenVerifier,
    issue_token,
    parse_ttl,
)

SECRET = "s" * 40


def _now() -> datetime:
    """The current time, read per use: a module-level constant goes stale in long runs."""
    return datetime.now(UTC)


def _hs256(claims: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def _base_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "alice",
        "org": "acme",
        "roles": ["clinician"],
        "iat": _now(),
        "exp": _now() + timedelta(minutes=5),
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


# --- HS256 -------------------------------------------------------------------------------


def test_hs256_round_trip() -> None:
    token = issue_token("alice", "acme", ["clinician", "auditor"], SECRET, timedelta(minutes=5))
    claims = TokenVerifier(secret=SECRET).verify(token)
    assert claims.subject == "alice"
    assert claims.org == "acme"
    assert claims.roles == ("clinician", "auditor")
    assert claims.expires_at - claims.issued_at == timedelta(minutes=5)
    assert claims.token_id and claims.raw["sub"] == "alice"


def test_platform_admin_token_needs_no_org() -> None:
    token = issue_token("root", None, ["platform_admin"], SECRET)
    claims = TokenVerifier(secret=SECRET).verify(token)
    assert claims.org is None and claims.roles == ("platform_admin",)


def test_expired_token_is_refused_after_the_leeway() -> None:
    issued = _now() - timedelta(hours=2)
    token = issue_token("alice", "acme", ["clinician"], SECRET, timedelta(hours=1), now=issued)
    with pytest.raises(TokenExpiredError, match="expired") as caught:
        TokenVerifier(secret=SECRET).verify(token)
    assert caught.value.code == "token_expired"
    assert caught.value.status == 401  # an AuthenticationError: one handler, problem JSON


def test_leeway_absorbs_small_clock_skew() -> None:
    token = _hs256(_base_claims(exp=_now() - timedelta(seconds=10)))
    assert TokenVerifier(secret=SECRET, leeway=timedelta(seconds=30)).verify(token)
    with pytest.raises(TokenExpiredError):
        TokenVerifier(secret=SECRET, leeway=timedelta(0)).verify(token)


def test_tampered_payload_fails_the_signature() -> None:
    header, payload, signature = issue_token("alice", "acme", ["clinician"], SECRET).split(".")
    forged_claims = _base_claims(roles=["platform_admin"])
    forged = jwt.utils.base64url_encode(
        json.dumps(forged_claims, default=lambda d: int(d.timestamp())).encode()
    ).decode()
    assert forged != payload
    with pytest.raises(TokenSignatureError, match="signature"):
        TokenVerifier(secret=SECRET).verify(f"{header}.{forged}.{signature}")


def test_token_signed_with_another_secret_is_refused() -> None:
    token = issue_token("alice", "acme", ["clinician"], "x" * 40)
    with pytest.raises(TokenSignatureError):
        TokenVerifier(secret=SECRET).verify(token)


@pytest.mark.parametrize(
    ("missing", "message"),
    [("sub", "sub"), ("exp", "exp"), ("iat", "iat"), ("roles", "roles"), ("org", "org")],
)
def test_missing_claims_are_named(missing: str, message: str) -> None:
    token = _hs256({k: v for k, v in _base_claims().items() if k != missing})
    with pytest.raises(TokenClaimsError, match=f"missing claim: {message}"):
        TokenVerifier(secret=SECRET).verify(token)


@pytest.mark.parametrize(
    "claims",
    [
        _base_claims(sub=""),
        _base_claims(roles="clinician"),
        _base_claims(roles=["clinician", 7]),
        _base_claims(org=42),
    ],
    ids=["empty-sub", "roles-string", "roles-non-string", "org-number"],
)
def test_malformed_claims_are_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(TokenClaimsError):
        TokenVerifier(secret=SECRET).verify(_hs256(claims))


def test_issuer_and_audience_are_checked_when_configured() -> None:
    verifier = TokenVerifier(secret=SECRET, issuer="https://idp", audience="ehr")
    good = issue_token("a", "acme", [], SECRET, issuer="https://idp", audience="ehr")
    assert verifier.verify(good).subject == "a"
    for bad in (
        issue_token("a", "acme", [], SECRET, issuer="https://other", audience="ehr"),
        issue_token("a", "acme", [], SECRET, issuer="https://idp", audience="billing"),
        issue_token("a", "acme", [], SECRET, audience="ehr"),
    ):
        with pytest.raises(TokenClaimsError):
            verifier.verify(bad)


def test_audience_in_token_but_not_configured_says_so() -> None:
    token = issue_token("a", "acme", [], SECRET, audience="ehr")
    with pytest.raises(TokenClaimsError, match="EHR_JWT_AUDIENCE"):
        TokenVerifier(secret=SECRET).verify(token)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "Bearer x.y.z"])
def test_garbage_is_malformed(token: str) -> None:
    with pytest.raises(TokenMalformedError):
        TokenVerifier(secret=SECRET).verify(token)


def test_unsigned_tokens_are_refused() -> None:
    token = jwt.encode(_base_claims(), "", algorithm="none")
    with pytest.raises(TokenKeyError, match="'none' is not accepted"):
        TokenVerifier(secret=SECRET).verify(token)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        issue_token("a", "acme", [], "short")
    with pytest.raises(ValueError, match="32 bytes"):
        TokenVerifier(secret="short")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("7d", 604800), ("45", 45)]
)
def test_parse_ttl(text: str, seconds: int) -> None:
    assert parse_ttl(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0", "1w", "-5m", "h"])
def test_parse_ttl_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ttl(text)


# --- JWKS (RS256 / ES256) against a real HTTP server ---------------------------------


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 whose document and status a test can change."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.status = 200
        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                body = json.dumps(owner.document).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def publish(self, *keys: tuple[str, Any]) -> None:
        self.document = {"keys": [_public_jwk(kid, key) for kid, key in keys]}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _public_jwk(kid: str, private_key: Any) -> dict[str, Any]:
    public = private_key.public_key()
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
        jwk["alg"] = "RS256"
    else:
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
        jwk["alg"] = "ES256"
    return {**jwk, "kid": kid, "use": "sig"}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def verifier(jwks: JwksServer) -> Iterator[TokenVerifier]:
    with TokenVerifier(jwks_url=jwks.url, jwks_cooldown=0) as v:
        yield v


def _signed(key: Any, alg: str, kid: str | None, **overrides: Any) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(_base_claims(**overrides), key, algorithm=alg, headers=headers)


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_jwks_signed_tokens_verify(
    alg: str, rsa_key: Any, ec_key: Any, jwks: JwksServer, verifier: TokenVerifier
) -> None:
    key = rsa_key if alg == "RS256" else ec_key
    jwks.publish(("rsa-1", rsa_key), ("ec-1", ec_key))
    claims = verifier.verify(_signed(key, alg, "rsa-1" if alg == "RS256" else "ec-1"))
    assert claims.subject == "alice" and claims.roles == ("clinician",)


async def test_verify_async_fetches_without_blocking(rsa_key: Any, jwks: JwksServer) -> None:
    jwks.publish(("rsa-1", rsa_key))
    verifier = TokenVerifier(jwks_url=jwks.url)
    try:
        claims = await verifier.verify_async(_signed(rsa_key, "RS256", "rsa-1"))
        assert claims.subject == "alice"
        await verifier.verify_async(_signed(rsa_key, "RS256", "rsa-1"))
        assert jwks.hits == 1  # cached
    finally:
        await verifier.aclose()


def test_keys_are_cached_between_tokens(
    rsa_key: Any, jwks: JwksServer, verifier: TokenVerifier
) -> None:
    jwks.publish(("rsa-1", rsa_key))
    for _ in range(5):
        verifier.verify(_signed(rsa_key, "RS256", "rsa-1"))
    assert jwks.hits == 1


def test_kid_rotation_refreshes_the_key_set(
    rsa_key: Any, ec_key: Any, jwks: JwksServer, verifier: TokenVerifier
) -> None:
    jwks.publish(("old", rsa_key))
    verifier.verify(_signed(rsa_key, "RS256", "old"))
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks.publish(("new", new_key), ("old", rsa_key))
    assert verifier.verify(_signed(new_key, "RS256", "new")).subject == "alice"
    assert jwks.hits == 2
    jwks.publish(("new", new_key))  # the provider retires the old key
    with pytest.raises(TokenKeyError, match="'gone'"):
        verifier.verify(_signed(rsa_key, "RS256", "gone"))


def test_unknown_kids_cannot_flood_the_provider(rsa_key: Any, jwks: JwksServer) -> None:
    jwks.publish(("rsa-1", rsa_key))
    with TokenVerifier(jwks_url=jwks.url, jwks_cooldown=60) as verifier:
        verifier.verify(_signed(rsa_key, "RS256", "rsa-1"))
        for n in range(20):
            with pytest.raises(TokenKeyError):
                verifier.verify(_signed(rsa_key, "RS256", f"made-up-{n}"))
    assert jwks.hits == 1


def test_signature_by_another_key_with_a_known_kid_fails(
    rsa_key: Any, jwks: JwksServer, verifier: TokenVerifier
) -> None:
    jwks.publish(("rsa-1", rsa_key))
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(TokenSignatureError):
        verifier.verify(_signed(impostor, "RS256", "rsa-1"))


def test_expired_jwks_token(rsa_key: Any, jwks: JwksServer, verifier: TokenVerifier) -> None:
    jwks.publish(("rsa-1", rsa_key))
    token = _signed(rsa_key, "RS256", "rsa-1", exp=_now() - timedelta(hours=1))
    with pytest.raises(TokenExpiredError):
        verifier.verify(token)


def test_hmac_with_the_public_key_is_refused(
    rsa_key: Any, jwks: JwksServer, verifier: TokenVerifier
) -> None:
    """Algorithm confusion: the RSA public key used as an HS256 secret gets nowhere."""
    jwks.publish(("rsa-1", rsa_key))
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT","kid":"rsa-1"}')
    payload = jwt.utils.base64url_encode(
        json.dumps(_base_claims(), default=lambda d: int(d.timestamp())).encode()
    )
    signature = hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest()
    forged = b".".join([header, payload, jwt.utils.base64url_encode(signature)]).decode()
    with pytest.raises(TokenKeyError, match="HS256 tokens are not accepted"):
        verifier.verify(forged)


def test_key_of_another_algorithm_is_refused(
    ec_key: Any, rsa_key: Any, jwks: JwksServer, verifier: TokenVerifier
) -> None:
    jwks.publish(("rsa-1", rsa_key))
    with pytest.raises(TokenKeyError, match="RS256"):
        verifier.verify(_signed(ec_key, "ES256", "rsa-1"))


def test_token_without_kid_uses_the_only_key(
    rsa_key: Any, jwks: JwksServer, verifier: TokenVerifier
) -> None:
    jwks.publish(("rsa-1", rsa_key))
    assert verifier.verify(_signed(rsa_key, "RS256", None)).subject == "alice"


def test_token_without_kid_is_ambiguous_among_several_keys(
    rsa_key: Any, ec_key: Any, jwks: JwksServer, verifier: TokenVerifier
) -> None:
    jwks.publish(("rsa-1", rsa_key), ("ec-1", ec_key))
    with pytest.raises(TokenKeyError, match="no 'kid'"):
        verifier.verify(_signed(rsa_key, "RS256", None))


def test_symmetric_keys_in_a_jwks_are_ignored(jwks: JwksServer, verifier: TokenVerifier) -> None:
    secret = "k" * 40
    jwks.document = {
        "keys": [{"kty": "oct", "kid": "hmac", "k": jwt.utils.base64url_encode(secret.encode())}]
    }
    with pytest.raises(TokenKeyError):
        verifier.verify(jwt.encode(_base_claims(), secret, algorithm="HS256"))


def test_provider_outage_is_a_key_error(rsa_key: Any, jwks: JwksServer) -> None:
    jwks.status = 503
    with (
        TokenVerifier(jwks_url=jwks.url) as verifier,
        pytest.raises(TokenKeyError, match="could not fetch"),
    ):
        verifier.verify(_signed(rsa_key, "RS256", "rsa-1"))


def test_secret_and_jwks_together(rsa_key: Any, jwks: JwksServer) -> None:
    jwks.publish(("rsa-1", rsa_key))
    with TokenVerifier(secret=SECRET, jwks_url=jwks.url) as verifier:
        assert verifier.verify(issue_token("cli", "acme", ["org_admin"], SECRET)).subject == "cli"
        assert verifier.verify(_signed(rsa_key, "RS256", "rsa-1")).subject == "alice"
