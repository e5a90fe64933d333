"""v2 -> FHIR -> v2: the facts of the radiology corpus and of generated messages survive
the round trip (see v2_facts.py for what is compared and how it is normalised)."""

from __future__ import annotations

import base64

import pytest
from hl7_fhir import mapping, v2
from hl7_fhir.errors import HL7FhirError, MappingError

from tests.corpus import CORPUS, DELIBERATELY_BROKEN, hl7_files, relative

from . import v2_facts
from .fhir_samples import RADIOLOGY, Json, build

# -- round trip: v2 -> FHIR -> v2 ----------------------------------------------------

SEEDS = range(20)
BUILT_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6")
GENERATED = {
    "adt_a08": "ADT^A08",
    "orm": "ORM^O01",
    "oru_lab": "ORU^R01",
    "oru_rad": "ORU^R01",
    "siu_s12": "SIU^S12",
    "siu_s15": "SIU^S15",
}
ZDS = mapping.ZSegmentRule(path="ZDS-1.1", target="ImagingStudy.identifier")
CORPUS_FILES = {
    "adt_a08_v25_update.hl7": ("ADT^A08", {}),
    "orm_o01_v25_new_order.hl7": ("ORM^O01", {}),
    "orm_o01_v25_lf_line_endings.hl7": ("ORM^O01", {}),
    "orm_o01_v23_medsynapse.hl7": ("ORM^O01", {"accession_number": "OBR-2"}),
    "oru_r01_v25_rtf_report.hl7": ("ORU^R01", {}),
    "oru_r01_v23_text_report.hl7": ("ORU^R01", {"accession_number": "OBR-2"}),
    "oru_r01_v251_zsegment_utf8.hl7": ("ORU^R01", {"z_segments": (ZDS,)}),
    "siu_s12_v25_book.hl7": ("SIU^S12", {}),
    "siu_s13_v25_reschedule.hl7": ("SIU^S13", {}),
    "siu_s14_v25_modify.hl7": ("SIU^S14", {}),
    "siu_s15_v25_cancel.hl7": ("SIU^S15", {}),
}


def fhir_statuses(msg: v2.Message, kind: str, profile: mapping.MappingProfile) -> list[str]:
    bundle = mapping.to_fhir(msg, profile)
    return [
        e["resource"]["status"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind
    ]


def round_trip(
    original: v2.Message, message_type: str, profile: mapping.MappingProfile | None = None
) -> v2.Message:
    """to_fhir, then from_fhir in the original's version; the result must validate."""
    event = f"{original.message_type}^{original.trigger_event}"
    assert event in mapping.supported_events(), f"no v2 -> FHIR mapping for {event}"
    bundle = mapping.to_fhir(original, profile)
    return build(bundle, message_type, profile, version=original.version)


def assert_same_facts(
    original: v2.Message, rebuilt: v2.Message, profile: mapping.MappingProfile | None = None
) -> None:
    profile = profile or mapping.MappingProfile()
    kind = original.message_type
    assert v2_facts.patient_facts(rebuilt) == v2_facts.patient_facts(original)
    if kind in ("ORM", "ORU"):
        where = profile.accession_number
        orders = v2_facts.order_facts(rebuilt, where)
        expected = v2_facts.order_facts(original, where)
        if kind == "ORU":
            # v2 -> FHIR makes the order of a result a ServiceRequest *stub* (identity and
            # code only: the ORM owns the order), so its priority does not come back.
            for facts in (*orders, *expected):
                del facts["priority"]
        assert orders == expected
    if kind == "ORM":
        statuses = fhir_statuses(rebuilt, "ServiceRequest", profile)
        assert statuses == fhir_statuses(original, "ServiceRequest", profile)
    if kind == "ORU":
        reports = v2_facts.report_facts(rebuilt)
        expected = v2_facts.report_facts(original)
        for sent, back in zip(expected, reports, strict=True):
            if not sent["status"]:  # derived from the OBX statuses on the way in
                del sent["status"], back["status"]
        assert reports == expected
        assert v2_facts.observation_facts(rebuilt) == v2_facts.observation_facts(original)
        statuses = fhir_statuses(rebuilt, "DiagnosticReport", profile)
        assert statuses == fhir_statuses(original, "DiagnosticReport", profile)
    if kind == "SIU":
        assert v2_facts.appointment_facts(rebuilt) == v2_facts.appointment_facts(original)
        statuses = fhir_statuses(rebuilt, "Appointment", profile)
        assert statuses == fhir_statuses(original, "Appointment", profile)
    for rule in profile.z_segments:
        assert rebuilt[rule.path] == original[rule.path]


@pytest.mark.parametrize(
    ("name", "message_type", "settings"), [(n, *v) for n, v in sorted(CORPUS_FILES.items())]
)
def test_round_trip_radiology_corpus(name: str, message_type: str, settings: Json) -> None:
    original = v2.parse((RADIOLOGY / name).read_bytes())
    profile = mapping.MappingProfile(**settings)
    assert_same_facts(original, round_trip(original, message_type, profile), profile)


@pytest.mark.parametrize("version", ["2.5.1", "2.3"])
@pytest.mark.parametrize("kind", sorted(GENERATED))
def test_round_trip_generated(kind: str, version: str) -> None:
    profile = mapping.MappingProfile(z_segments=(ZDS,))  # the study UID of imaging orders
    for seed in SEEDS:
        original = v2.generate(kind, version=version, seed=seed)
        try:
            rebuilt = round_trip(original, GENERATED[kind], profile)
            assert_same_facts(original, rebuilt, profile)
        except AssertionError as exc:
            raise AssertionError(f"{kind} v{version} seed {seed}: {exc}") from exc


def test_round_trip_keeps_the_rtf_report_bytes() -> None:
    original = v2.parse((RADIOLOGY / "oru_r01_v25_rtf_report.hl7").read_bytes())
    rebuilt = round_trip(original, "ORU^R01")
    (sent,) = [o for o in original.segments("OBX") if o[2] == "ED"]
    (back,) = [o for o in rebuilt.segments("OBX") if o[2] == "ED"]
    assert base64.b64decode(back.get(5, 1, 5)) == base64.b64decode(sent.get(5, 1, 5))
    assert (back.get(5, 1, 2), back.get(5, 1, 3), back.get(5, 1, 4)) == (
        "application",
        "rtf",
        "Base64",
    )
    assert back.get(5, 1, 5).startswith("e1xydGYx")  # {\rtf1


def _corpus_messages() -> list[tuple[str, int]]:
    found = []
    for path in hl7_files():
        name = relative(path)
        if name in DELIBERATELY_BROKEN:
            continue
        try:
            messages = v2.parse_batch(path.read_bytes())
        except HL7FhirError:
            continue
        found += [(name, i) for i, m in enumerate(messages) if _maps(m)]
    return found


def _maps(msg: v2.Message) -> bool:
    """A message of a type we build that the v2 -> FHIR side maps (what it refuses, and
    why, its own tests cover)."""
    if not _message_type(msg):
        return False
    try:
        mapping.to_fhir(msg)
    except HL7FhirError:
        return False
    return True


def _message_type(msg: v2.Message) -> str:
    event = f"{msg.message_type}^{msg.trigger_event}".upper()
    if event in mapping.supported_messages():
        return event
    return {"ORM": "ORM^O01", "ORU": "ORU^R01", "SIU": "SIU"}.get(msg.message_type, "")


@pytest.mark.parametrize(("name", "index"), _corpus_messages())
def test_every_corpus_message_maps_back(name: str, index: int) -> None:
    """Every corpus message of a type we build, once in FHIR, builds a valid message of
    its type again (in its own version when we build that version)."""
    original = v2.parse_batch((CORPUS / name).read_bytes())[index]
    bundle = mapping.to_fhir(original)
    version = original.version if original.version in BUILT_VERSIONS else "2.5.1"
    try:
        rebuilt = build(bundle, _message_type(original), version=version)
    except MappingError as exc:
        # An admission whose PV1 identifies no visit has no Encounter in FHIR, and an
        # admit message without one is refused rather than sent with PV1-2 "N".
        assert original.trigger_event == "A01" and "needs an Encounter" in str(exc)
        return
    assert v2_facts.patient_facts(rebuilt)["identifiers"]
