"""What the handlers share: TLS contexts from PEM text, and operation parameters.

`ssl` can load CA certificates from memory but a certificate chain and key only from
files, so those are written to a private temporary directory (0700, files 0600), loaded
and deleted at once: the plaintext key touches the disk for the duration of one call.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ehr_api.errors import InvalidError

__all__ = ["parse_params", "tls_context"]

M = TypeVar("M", bound=BaseModel)


def tls_context(
    *, ca_cert: str | None = None, cert_chain: str | None = None, private_key: str | None = None
) -> ssl.SSLContext:
    """A client TLS context: server verification on, optionally a client certificate.

    With `ca_cert` only that CA is trusted (a hospital's private PKI); without it, the
    system's roots.

    Raises:
        InvalidError: the material does not load (field ``secrets``).
    """
    try:
        context = (
            ssl.create_default_context(cadata=ca_cert) if ca_cert else ssl.create_default_context()
        )
        if cert_chain and private_key:
            with tempfile.TemporaryDirectory(prefix="ehr-tls-") as folder:
                cert_path = _write_private(Path(folder) / "chain.pem", cert_chain)
                key_path = _write_private(Path(folder) / "key.pem", private_key)
                context.load_cert_chain(cert_path, key_path)
    except (ssl.SSLError, ValueError):
        # Deliberately without the library's message or cause: it may quote the material.
        raise InvalidError("the TLS material does not load", field="secrets") from None
    return context


def _write_private(path: Path, text: str) -> Path:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    return path


def parse_params(model: type[M], params: Any) -> M:
    """`params` as `model`, or an `InvalidError` naming `params.<field>`.

    Raises:
        InvalidError: a parameter is missing or wrong.
    """
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        issues = [
            (".".join(["params", *(str(part) for part in error["loc"])]), error["msg"])
            for error in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
    detail = "; ".join(f"{field}: {message}" for field, message in issues)
    raise InvalidError(detail, field=issues[0][0])
