"""`ehr-platform`: run the platform and administer it from a shell.

    ehr-platform up [--data-dir DIR] [--host H] [--port 8000]   migrate, seed a demo org, serve
    ehr-platform api [--host H] [--port P]                       serve only
    ehr-platform migrate
    ehr-platform org create SLUG --name NAME
    ehr-platform token --org SLUG --role ROLE [--sub NAME] [--ttl 1h]
    ehr-platform apikey create --org SLUG --role ROLE [--name N] [--expires 30d]
    ehr-platform audit verify --org SLUG | --platform
    ehr-platform keys rotate

Every command takes `--data-dir` (env `EHR_DATA_DIR`, default `./var`): the SQLite
database lives there (unless `DATABASE_URL` is set) and so do the JWT secret and the
encryption keys when `EHR_JWT_SECRET` / `EHR_ENCRYPTION_KEYS` are not set, generated on
first use, so every command pointed at the same directory works with the others.

Output is for people except where a script wants one value: `token` and `apikey create`
print only the credential. Errors are one line on stderr; exit status 2 for usage
errors, 1 for everything else that failed (including a broken audit chain).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from ehr_api import admin
from ehr_api.admin import DEMO_ADMIN, DEMO_SLUG, CommandError
from ehr_api.auth.principal import GLOBAL_ROLES, Role
from ehr_api.auth.tokens import issue_token, parse_ttl
from ehr_api.db import Database
from ehr_api.db.base import utcnow
from ehr_api.security.crypto import CryptoError, Keyring
from ehr_api.security.local_secrets import with_local_secrets
from ehr_api.settings import Settings, SettingsError

__all__ = ["main"]

PROG = "ehr-platform"
DEMO_TOKEN_TTL = timedelta(hours=12)
_T = TypeVar("_T")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        result: int = args.run(args, settings)
        return result
    except CommandError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130


# --- commands --------------------------------------------------------------------------


def _up(args: argparse.Namespace, settings: Settings) -> int:
    demo = _run(admin.seed_demo(settings))
    host, port = _listen(args, settings)
    base = f"http://{host}:{port}"
    print(f"EHR platform: data in {settings.data_dir.resolve()}")
    print(f"  API {base}/api    docs {base}/docs    readiness {base}/readyz")
    if demo:
        token = _issue(settings, DEMO_ADMIN, DEMO_SLUG, [Role.ORG_ADMIN.value], DEMO_TOKEN_TTL)
        print(f'  org_admin token for organisation "{DEMO_SLUG}" (valid 12h):\n\n{token}\n')
        print(f'  try: curl -H "Authorization: Bearer $TOKEN" {base}/api/me')
    else:
        print(f"  tokens: {PROG} token --org SLUG --role org_admin")
    return _serve(args, settings)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from ehr_api.app import create_app

    host, port = _listen(args, settings)
    settings = dataclasses.replace(settings, host=host, port=port)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )
    return 0


def _listen(args: argparse.Namespace, settings: Settings) -> tuple[str, int]:
    return args.host or settings.host, args.port or settings.port


def _migrate(_args: argparse.Namespace, settings: Settings) -> int:
    print(f"database at revision {_run(admin.migrate(settings))} (head)")
    return 0


def _org_create(args: argparse.Namespace, settings: Settings) -> int:
    org = _with_database(
        settings, lambda db: admin.create_organization(db, slug=args.slug, name=args.name)
    )
    print(f"created organisation {org.slug} ({org.id})")
    return 0


def _token(args: argparse.Namespace, settings: Settings) -> int:
    roles = _roles(args.role)
    ttl = _ttl(args.ttl, "--ttl")
    if args.org is None and GLOBAL_ROLES.isdisjoint(roles):
        raise CommandError("--org is required unless the role is platform_admin", status=2)
    if args.org is not None:
        _with_database(settings, lambda db: admin.find_organization(db, args.org, active=True))
    print(_issue(settings, args.sub, args.org, roles, ttl))
    return 0


def _apikey_create(args: argparse.Namespace, settings: Settings) -> int:
    roles = _roles(args.role)
    expires_at = utcnow() + _ttl(args.expires, "--expires") if args.expires else None
    key = _with_database(
        settings,
        lambda db: admin.create_api_key(
            db, org=args.org, roles=roles, name=args.name, expires_at=expires_at
        ),
    )
    print(key)
    return 0


def _audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    org = None if args.platform else args.org
    chain, result = _with_database(settings, lambda db: admin.verify_audit(db, org=org))
    if result.broken is None:
        print(f"audit chain of {chain} intact: {result.rows} rows verified")
        return 0
    print(
        f"audit chain of {chain} BROKEN at row {result.broken.row_id}: {result.broken.reason}"
        f" ({result.rows} rows before it verified)"
    )
    return 1


def _fhir_reindex(args: argparse.Namespace, settings: Settings) -> int:
    done = _with_database(
        settings, lambda db: admin.reindex_fhir(db, org=args.org, resource_type=args.type)
    )
    for slug, result in done:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(result.by_type.items()))
        print(f"{slug}: {result.total} resources indexed again" + (f" ({kinds})" if kinds else ""))
    if not done:
        print("no organisations")
    return 0


def _keys_rotate(_args: argparse.Namespace, settings: Settings) -> int:
    from_env = bool(Settings.from_env().encryption_keys)
    keyring = _keyring(settings)
    current, changed, total = _with_database(
        settings, lambda db: admin.rotate_keys(db, settings, keyring, new_key=not from_env)
    )
    print(f"current key {current.current_kid}; re-encrypted {changed} of {total} integrations")
    if from_env:
        print("keys come from EHR_ENCRYPTION_KEYS: values were re-sealed under its first key")
    else:
        print("older keys stay in the key file; restart running API processes to load it")
    return 0


# --- helpers ---------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise CommandError(str(exc), status=2) from None
    if args.data_dir is not None:
        settings = dataclasses.replace(settings, data_dir=Path(args.data_dir))
    try:
        return with_local_secrets(settings)
    except OSError as exc:
        raise CommandError(f"data directory {settings.data_dir}: {exc}") from None


def _keyring(settings: Settings) -> Keyring:
    try:
        return Keyring.parse(settings.encryption_keys or "")
    except CryptoError as exc:
        raise CommandError(str(exc), status=2) from None


def _issue(
    settings: Settings, subject: str, org: str | None, roles: list[str], ttl: timedelta
) -> str:
    if not settings.jwt_secret:
        raise CommandError("no JWT secret: set EHR_JWT_SECRET to issue tokens")
    return issue_token(
        subject,
        org,
        roles,
        settings.jwt_secret,
        ttl,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )


def _roles(given: list[str]) -> list[str]:
    known = {role.value for role in Role}
    for role in given:
        if role not in known:
            raise CommandError(f"unknown role {role!r}; expected one of {sorted(known)}", status=2)
    return list(dict.fromkeys(given))


def _ttl(text: str, option: str) -> timedelta:
    try:
        return parse_ttl(text)
    except ValueError as exc:
        raise CommandError(f"{option}: {exc}", status=2) from None


def _run(work: Coroutine[Any, Any, _T]) -> _T:
    try:
        return asyncio.run(work)
    except OSError as exc:
        raise CommandError(f"database unreachable: {exc}") from None


def _with_database(settings: Settings, work: Callable[[Database], Awaitable[_T]]) -> _T:
    async def run() -> _T:
        async with admin.open_database(settings) as database:
            return await work(database)

    return _run(run())


# --- argument parsing ------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        help="data directory (env EHR_DATA_DIR, default ./var)",
    )
    serve = argparse.ArgumentParser(add_help=False)
    defaults = Settings()
    serve.add_argument("--host", default=None, help=f"listen address (default {defaults.host})")
    serve.add_argument("--port", type=int, default=None, help=f"port (default {defaults.port})")

    parser = argparse.ArgumentParser(prog=PROG, description="The EHR integration platform.")
    parser.add_argument("--data-dir", default=None, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[..., int], help: str, *parents: Any) -> Any:
        sub = commands.add_parser(name, help=help, parents=[common, *parents])
        sub.set_defaults(run=run)
        return sub

    command("up", _up, "migrate, seed a demo organisation on first run, and serve", serve)
    command("api", _serve, "serve the API (no migrations)", serve)
    command("migrate", _migrate, "migrate the database to the newest schema")

    org = commands.add_parser("org", help="organisations").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = org.add_parser("create", help="register an organisation", parents=[common])
    create.add_argument("slug")
    create.add_argument("--name", required=True)
    create.set_defaults(run=_org_create)

    token = command("token", _token, "print a signed JWT for a role")
    token.add_argument("--org", help="organisation slug or id (not needed for platform_admin)")
    token.add_argument("--role", action="append", required=True, help="repeat for several")
    token.add_argument("--sub", default="cli-user", help="subject (default cli-user)")
    token.add_argument("--ttl", default="1h", help="lifetime: 90s, 15m, 1h, 7d (default 1h)")

    apikey = commands.add_parser("apikey", help="API keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    key = apikey.add_parser("create", help="create a key and print it once", parents=[common])
    key.add_argument("--org", required=True)
    key.add_argument("--role", action="append", required=True, help="repeat for several")
    key.add_argument("--name", default="cli", help="a label for people (default cli)")
    key.add_argument("--expires", help="lifetime, e.g. 30d (default: never)")
    key.set_defaults(run=_apikey_create)

    audit_cmd = commands.add_parser("audit", help="the audit log").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    verify = audit_cmd.add_parser("verify", help="check a hash chain", parents=[common])
    which = verify.add_mutually_exclusive_group(required=True)
    which.add_argument("--org", help="organisation slug or id")
    which.add_argument("--platform", action="store_true", help="the platform's own chain")
    verify.set_defaults(run=_audit_verify)

    fhir = commands.add_parser("fhir", help="the FHIR store").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    reindex = fhir.add_parser(
        "reindex", help="rebuild search indexes (after a search-parameter change)", parents=[common]
    )
    reindex.add_argument("--org", help="organisation slug or id (default: every organisation)")
    reindex.add_argument("--type", help="one resource type (default: every type)")
    reindex.set_defaults(run=_fhir_reindex)

    keys = commands.add_parser("keys", help="encryption keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    rotate = keys.add_parser("rotate", help="new current key; re-encrypt", parents=[common])
    rotate.set_defaults(run=_keys_rotate)
    return parser


if __name__ == "__main__":
    sys.exit(main())
