"""A minimal in-memory FHIR server for the mapper's end-to-end tests.

It applies transaction Bundles the way the specification orders them (POST, then PUT)
with conditional create (``ifNoneExist``) and conditional update (``PUT
Type?identifier=...``), rewriting ``urn:uuid:`` references to the ids it assigns. This
is the edge of the library's world (the platform's real store comes later), so a small
fake is fair here; it implements only ``identifier`` searches.
"""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import parse_qsl, unquote

Json = dict[str, Any]


class MemoryStore:
    def __init__(self) -> None:
        self.resources: dict[tuple[str, str], Json] = {}
        self.versions: dict[tuple[str, str], int] = {}
        self._ids = itertools.count(1)

    def search(self, resource_type: str, query: str) -> list[Json]:
        params = dict(parse_qsl(query, keep_blank_values=True))
        token = unquote(params["identifier"])
        system, _, value = token.rpartition("|") if "|" in token else ("", "", token)
        return [
            r
            for (kind, _), r in self.resources.items()
            if kind == resource_type
            and any(
                i.get("value") == value and (not system or i.get("system") == system)
                for i in r.get("identifier", [])
            )
        ]

    def _store(self, resource: Json) -> str:
        key = (resource["resourceType"], resource["id"])
        self.versions[key] = self.versions.get(key, 0) + 1
        self.resources[key] = resource
        return f"{resource['resourceType']}/{resource['id']}"

    def transaction(self, bundle: Json) -> dict[str, str]:
        """Apply a transaction; returns fullUrl -> assigned ``Type/id``."""
        assert bundle["type"] == "transaction"
        entries = bundle["entry"]
        resolved: dict[str, str] = {}
        order = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 3, "GET": 4}
        for entry in sorted(entries, key=lambda e: order[e["request"]["method"]]):
            request = entry["request"]
            resource = entry["resource"]
            kind = resource["resourceType"]
            if request["method"] == "POST":
                matches = (
                    self.search(kind, request["ifNoneExist"]) if "ifNoneExist" in request else []
                )
                if len(matches) > 1:
                    raise ValueError(f"ifNoneExist matched {len(matches)} {kind}")
                if matches:
                    resolved[entry["fullUrl"]] = f"{kind}/{matches[0]['id']}"
                else:
                    resolved[entry["fullUrl"]] = f"{kind}/{next(self._ids)}"
            elif request["method"] == "PUT":
                url = request["url"]
                if "?" in url:
                    matches = self.search(kind, url.split("?", 1)[1])
                    if len(matches) > 1:
                        raise ValueError(f"conditional update matched {len(matches)} {kind}")
                    new_id = matches[0]["id"] if matches else str(next(self._ids))
                else:
                    new_id = url.split("/", 1)[1]
                resolved[entry["fullUrl"]] = f"{kind}/{new_id}"
        for entry in entries:
            text = json.dumps(entry["resource"])
            for full_url, reference in resolved.items():
                text = text.replace(f'"{full_url}"', f'"{reference}"')
            request = entry["request"]
            resource = json.loads(text)
            kind, new_id = resolved[entry["fullUrl"]].split("/", 1)
            exists = (kind, new_id) in self.resources
            if request["method"] == "POST" and exists:
                continue  # conditional create found it: leave it alone
            resource["id"] = new_id
            self._store(resource)
        return resolved

    def all(self, resource_type: str) -> list[Json]:
        return [r for (kind, _), r in self.resources.items() if kind == resource_type]

    def get(self, reference: str) -> Json:
        kind, rid = reference.split("/", 1)
        return self.resources[(kind, rid)]
