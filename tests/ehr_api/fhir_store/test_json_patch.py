"""JSON Patch: the RFC 6902 module on its own, then PATCH over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from ehr_api.events.models import EventLog
from ehr_api.fhir_store.json_patch import PatchFailedError, PatchSyntaxError, apply_patch
from sqlalchemy import select

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient

PATCH = {"Content-Type": "application/json-patch+json"}


@pytest.mark.parametrize(
    ("document", "patch", "expected"),
    [
        ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"foo": "bar", "baz": "qux"}),
        ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
         {"foo": ["bar", "qux", "baz"]}),
        ({"foo": [1]}, [{"op": "add", "path": "/foo/-", "value": 2}], {"foo": [1, 2]}),
        ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
        ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
        ({"baz": "qux"}, [{"op": "replace", "path": "/baz", "value": "boo"}], {"baz": "boo"}),
        ({"a": [1, 2, 3]}, [{"op": "replace", "path": "/a/1", "value": 9}], {"a": [1, 9, 3]}),
        ({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
         [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
         {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
        ({"foo": ["all", "grass", "cows", "eat"]}, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
         {"foo": ["all", "cows", "eat", "grass"]}),
        ({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}], {"a": {"b": 1}, "c": {"b": 1}}),
        ({"a/b": 1, "m~n": 2}, [{"op": "test", "path": "/a~1b", "value": 1},
                                {"op": "test", "path": "/m~0n", "value": 2}], {"a/b": 1, "m~n": 2}),
        ({"x": 1}, [{"op": "replace", "path": "", "value": {"y": 2}}], {"y": 2}),
    ],
)  # fmt: skip
def test_rfc6902_operations(document: Any, patch: Any, expected: Any) -> None:
    before = repr(document)
    assert apply_patch(document, patch) == expected
    assert repr(document) == before  # the input is never mutated


@pytest.mark.parametrize(
    ("patch", "error"),
    [
        ({"op": "add"}, PatchSyntaxError),
        ([{"op": "frobnicate", "path": "/a"}], PatchSyntaxError),
        ([{"op": "add", "path": "a", "value": 1}], PatchSyntaxError),
        ([{"op": "add", "path": "/a"}], PatchSyntaxError),
        ([{"op": "remove", "path": "/missing"}], PatchFailedError),
        ([{"op": "replace", "path": "/missing", "value": 1}], PatchFailedError),
        ([{"op": "add", "path": "/list/5", "value": 1}], PatchFailedError),
        ([{"op": "add", "path": "/list/01", "value": 1}], PatchFailedError),
        ([{"op": "test", "path": "/a", "value": 2}], PatchFailedError),
        ([{"op": "move", "from": "/n", "path": "/n/x"}], PatchFailedError),
        ([{"op": "add", "path": "/no/such", "value": 1}], PatchFailedError),
    ],
)
def test_bad_patches(patch: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        apply_patch({"a": 1, "list": [1], "n": {}}, patch)


async def test_patch_bumps_the_version_and_writes_an_event(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    pid = (await client.post(f"{BASE}/Patient", json=patient(), headers=a)).json()["id"]
    operations = [
        {"op": "test", "path": "/gender", "value": "female"},
        {"op": "replace", "path": "/gender", "value": "other"},
        {"op": "add", "path": "/name/0/given/-", "value": "Ann"},
    ]
    patched = await client.patch(f"{BASE}/Patient/{pid}", json=operations, headers={**a, **PATCH})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["gender"] == "other" and body["name"][0]["given"] == ["Jane", "Ann"]
    assert body["meta"]["versionId"] == "2" and patched.headers["ETag"] == 'W/"2"'
    assert (await client.get(f"{BASE}/Patient/{pid}", headers=a)).json() == body
    async with fhir.harness.database.platform_session(read_only=True) as db:
        events = (await db.execute(select(EventLog.event_type).order_by(EventLog.id))).all()
    assert [e for (e,) in events] == ["fhir.created", "fhir.updated"]

    stale = await client.patch(
        f"{BASE}/Patient/{pid}", json=operations[1:2], headers={**a, **PATCH, "If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412
    fresh = await client.patch(
        f"{BASE}/Patient/{pid}", json=operations[1:2], headers={**a, **PATCH, "If-Match": 'W/"2"'}
    )
    assert fresh.status_code == 200 and fresh.headers["ETag"] == 'W/"3"'


async def test_patch_errors(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    pid = (await client.post(f"{BASE}/Patient", json=patient(), headers=a)).json()["id"]
    url, headers = f"{BASE}/Patient/{pid}", {**a, **PATCH}
    invalid = await client.patch(
        url, json=[{"op": "replace", "path": "/gender", "value": "mal"}], headers=headers
    )
    assert invalid.status_code == 422
    assert any("Patient.gender" in i.get("expression", []) for i in invalid.json()["issue"])
    failed = await client.patch(
        url, json=[{"op": "test", "path": "/gender", "value": "male"}], headers=headers
    )
    assert failed.status_code == 422
    assert (await client.patch(url, json={"op": "add"}, headers=headers)).status_code == 400
    assert (await client.patch(url, content=b"[", headers=headers)).status_code == 400
    new_id = [{"op": "replace", "path": "/id", "value": "other"}]
    assert (await client.patch(url, json=new_id, headers=headers)).status_code == 400
    # application/json is a FHIRPath Patch's (a Parameters): a JSON Patch array is a 400.
    plain = await client.patch(url, json=[], headers={**a, "Content-Type": "application/json"})
    assert plain.status_code == 400 and "application/json-patch+json" in plain.text
    text = await client.patch(url, content=b"[]", headers={**a, "Content-Type": "text/plain"})
    assert text.status_code == 415
    assert (await client.get(url, headers=a)).headers["ETag"] == 'W/"1"'  # nothing stored

    noop = [{"op": "test", "path": "/gender", "value": "female"}]
    theirs = (await client.post(f"{BASE}/Patient", json=patient(), headers=fhir.b)).json()
    foreign = await client.patch(f"{BASE}/Patient/{theirs['id']}", json=noop, headers=headers)
    assert foreign.status_code == 404
    await client.delete(url, headers=a)
    assert (await client.patch(url, json=noop, headers=headers)).status_code == 410
