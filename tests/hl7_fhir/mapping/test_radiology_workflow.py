"""The radiology day, end to end, through one store: order, report, update, merge, schedule."""

from __future__ import annotations

import base64

from hl7_fhir import mapping, v2

from tests.corpus import CORPUS

from .memory_store import MemoryStore

RADIOLOGY = CORPUS / "radiology"


def apply(store: MemoryStore, name: str) -> None:
    store.transaction(mapping.to_fhir(v2.parse((RADIOLOGY / name).read_bytes())))


def test_the_radiology_workflow() -> None:
    store = MemoryStore()
    apply(store, "orm_o01_v25_new_order.hl7")
    (order,) = store.all("ServiceRequest")
    accession = [i for i in order["identifier"] if i["type"]["coding"][0]["code"] == "ACSN"]
    assert [i["value"] for i in accession] == ["ACC001"]
    assert order["status"] == "active" and order["intent"] == "order"
    (patient,) = store.all("Patient")
    assert order["subject"] == {"reference": f"Patient/{patient['id']}"}

    apply(store, "oru_r01_v25_rtf_report.hl7")
    assert len(store.all("ServiceRequest")) == 1, "the report must land on the ordered request"
    (report,) = store.all("DiagnosticReport")
    assert report["status"] == "final"
    assert report["basedOn"] == [{"reference": f"ServiceRequest/{order['id']}"}]
    rtf = [f for f in report["presentedForm"] if f["contentType"] == "application/rtf"]
    assert base64.b64decode(rtf[0]["data"]).startswith(b"{\\rtf1")
    assert "Cough for 3 weeks" in report["conclusion"]
    interpreter = report["resultsInterpreter"][0]
    assert "Smith" in interpreter.get("display", "") or "Smith" in str(
        store.get(interpreter["reference"])["name"]
    )

    apply(store, "adt_a08_v25_update.hl7")
    (patient,) = store.all("Patient")
    assert patient["address"][0]["city"] == "Richmond"
    assert [t["value"] for t in patient["telecom"]] == ["0499888777"]

    apply(store, "adt_a40_v25_merge.hl7")
    patients = {p["identifier"][0]["value"]: p for p in store.all("Patient")}
    assert patients["P777"]["active"] is False
    assert {
        "other": {"reference": f"Patient/{patients['P777']['id']}"},
        "type": "replaces",
    } in patients["P001"]["link"]

    apply(store, "siu_s12_v25_book.hl7")
    (booked,) = store.all("Appointment")
    assert booked["status"] == "booked"
    assert booked["start"].startswith("2024-01-15T10:00:00")
    apply(store, "siu_s13_v25_reschedule.hl7")
    apply(store, "siu_s14_v25_modify.hl7")
    (modified,) = store.all("Appointment")
    assert modified["id"] == booked["id"]
    assert modified["start"].startswith("2024-01-16T14:00:00")
    assert modified["minutesDuration"] == 45
    assert "female technologist" in modified["comment"]
    apply(store, "siu_s15_v25_cancel.hl7")
    (cancelled,) = store.all("Appointment")
    assert cancelled["id"] == booked["id"]
    assert cancelled["status"] == "cancelled"
    assert store.versions[("Appointment", booked["id"])] == 4
