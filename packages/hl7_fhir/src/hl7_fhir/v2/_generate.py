"""Realistic fake HL7 v2 messages: radiology orders, reports and schedules, lab results, ADT.

>>> msg = generate("adt_a08", seed=42)
>>> msg.message_type, msg.trigger_event, msg.structure
('ADT', 'A08', 'ADT_A01')

Every value is drawn from one :class:`random.Random`, so a seed gives byte-identical
messages, MSH-7 and MSH-10 included (times are a fixed base date plus random offsets,
never the clock). Values go through the path API, so "Smith & Sons Radiology" is
escaped, never spliced into the ER7 text. One patient is used for the whole message.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..errors import PathError
from . import _fake_data as fake
from ._builder import new_message
from ._message import Message, parse_version
from ._path import parse_path
from ._segment import Value

__all__ = ["MESSAGE_KINDS", "generate", "generate_many"]

MESSAGE_KINDS = (
    "orm", "oru", "oru_lab", "oru_rad", "adt_a01", "adt_a04", "adt_a08", "adt_a40",
    "siu", "siu_s12", "siu_s13", "siu_s14", "siu_s15",
)  # fmt: skip
_ALIASES = {"oru": ("oru_lab", "oru_rad"), "siu": ("siu_s12", "siu_s13", "siu_s14", "siu_s15")}
_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1")
_BASE = datetime(2025, 1, 6)  # a Monday; messages fall within the year after it
_HEADER_PATHS = {
    "sending_application": "MSH-3",
    "sending_facility": "MSH-4",
    "receiving_application": "MSH-5",
    "receiving_facility": "MSH-6",
    "control_id": "MSH-10",
    "processing_id": "MSH-11",
}
_ROOMS = {"CT": "CT Scanner", "MR": "MRI Scanner", "US": "Ultrasound Room", "XR": "X-Ray Room", "NM": "Gamma Camera"}  # fmt: skip


@dataclass(slots=True)
class _Context:
    """What every segment builder of one message shares."""

    rng: random.Random
    version: tuple[int, ...]
    now: datetime  # MSH-7; every other time is placed relative to it
    site: fake.Site
    patient: fake.Patient

    def since(self, *version: int) -> bool:
        return self.version >= version

    def minutes(self) -> Value:
        """The unit "minutes" as a CE: UCUM from v2.5, the bare ISO+ code before."""
        return ("min", "minutes", "UCUM") if self.since(2, 5) else "MIN"


@dataclass(frozen=True, slots=True)
class _Order:
    placer: str  # ORC-2/OBR-2, assigned by the EHR
    accession: str  # ORC-3/OBR-3 (and OBR-18 for imaging), assigned by the filler
    filler: str  # RIS or LIS
    procedure: fake.Procedure
    reason: tuple[str, str]
    referrer: fake.Practitioner
    practice: tuple[str, str]
    priority: str  # TQ-6: S stat, A asap, R routine
    ordered: datetime
    scheduled: datetime
    note: str


# -- public API ----------------------------------------------------------------------


def generate(
    kind: str,
    *,
    version: str = "2.5.1",
    seed: int | None = None,
    rng: random.Random | None = None,
    **overrides: Value,
) -> Message:
    """One fake message of ``kind`` (see :data:`MESSAGE_KINDS`).

    ``"oru"`` is a lab or a radiology report at random (``"oru_lab"``/``"oru_rad"`` force
    one), ``"siu"`` one of S12-S15. ``version`` is 2.3, 2.3.1, 2.4, 2.5 or 2.5.1; what a
    version lacks (MSH-9.3 before 2.3.1, TQ1 before 2.5, OBX-23 before 2.5.1) is left
    out. Pass ``seed`` for a reproducible message, or ``rng`` to draw from (and advance)
    your own generator.

    ``overrides`` replace header values (``sending_application``, ``sending_facility``,
    ``receiving_application``, ``receiving_facility``, ``control_id``, ``processing_id``),
    set the message time (``timestamp``, a datetime the other times follow), or write
    any path once the message is built: ``PID_5_1="Doe"`` or ``**{"PID-3[2].1": "X1"}``.

    >>> generate("orm", seed=1, sending_application="MYEHR").sending_application
    'MYEHR'

    Raises:
        ValueError: unknown ``kind`` or ``version``, or both ``seed`` and ``rng`` given.
        TypeError: an override that is neither an option above nor an HL7 path.
    """
    if kind not in MESSAGE_KINDS:
        raise ValueError(f"unknown message kind {kind!r}; expected one of {MESSAGE_KINDS}")
    if version not in _VERSIONS:
        raise ValueError(f"unsupported version {version!r}; expected one of {_VERSIONS}")
    if seed is not None and rng is not None:
        raise ValueError("pass seed or rng, not both")
    timestamp, paths = _split_overrides(overrides)
    rng = rng if rng is not None else random.Random(seed)
    spec = _KINDS[rng.choice(_ALIASES[kind]) if kind in _ALIASES else kind]
    now = _random_time(rng) if timestamp is None else timestamp.replace(microsecond=0)
    site = rng.choice(fake.SITES)
    ctx = _Context(rng, parse_version(version), now, site, fake.make_patient(rng, site, now))
    msg = new_message(
        spec.message_type + (f"^{spec.structure}" if ctx.since(2, 3, 1) else ""),
        version=version,
        sending_application=rng.choice(spec.senders),
        sending_facility=site.code,
        receiving_application=rng.choice(spec.receivers),
        receiving_facility=site.code,
        control_id=_control_id(rng, now),
        timestamp=now,
        charset="UNICODE UTF-8" if ctx.since(2, 5) else "8859/1",
    )
    spec.build(ctx, msg)
    for path, value in paths.items():
        msg[path] = value
    return msg


def generate_many(
    kinds: Sequence[str], count: int, *, version: str = "2.5.1", seed: int | None = None
) -> list[Message]:
    """``count`` messages cycling through ``kinds``, all drawn from one generator.

    Deterministic for a given ``seed``; control ids (MSH-10) are unique within the list.

    >>> [m.trigger_event for m in generate_many(["orm", "adt_a08"], 3, seed=5)]
    ['O01', 'A08', 'O01']

    Raises:
        ValueError: ``kinds`` is empty or holds an unknown kind, ``count`` is negative,
            or ``version`` is not supported.
    """
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if not kinds:
        raise ValueError("kinds is empty")
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    unknown = [kind for kind in kinds if kind not in MESSAGE_KINDS]
    if unknown:
        raise ValueError(f"unknown message kinds {unknown}; expected some of {MESSAGE_KINDS}")
    rng = random.Random(seed)
    seen: set[str] = set()
    messages = []
    for i in range(count):
        msg = generate(kinds[i % len(kinds)], version=version, rng=rng)
        while msg.control_id in seen:
            msg["MSH-10"] = _control_id(rng, _BASE)
        seen.add(msg.control_id)
        messages.append(msg)
    return messages


# -- shared helpers ------------------------------------------------------------------


def _split_overrides(overrides: dict[str, Value]) -> tuple[datetime | None, dict[str, Value]]:
    """The ``timestamp`` override, and every other override as a path to write."""
    timestamp = overrides.get("timestamp")
    if timestamp is not None and not isinstance(timestamp, datetime):
        raise TypeError(f"timestamp must be a datetime, got {type(timestamp).__name__}")
    paths: dict[str, Value] = {}
    for key, value in overrides.items():
        if key in _HEADER_PATHS:
            if not isinstance(value, str):
                raise TypeError(f"{key} must be a str, got {type(value).__name__}")
            paths[_HEADER_PATHS[key]] = value
        elif key != "timestamp":
            paths[_override_path(key)] = value
    return timestamp, paths


def _override_path(key: str) -> str:
    """``"PID_5_1"`` -> ``"PID-5.1"``; keys already written as paths pass through."""
    path = key
    if "-" not in key and "_" in key:
        segment, _, rest = key.partition("_")
        field, _, components = rest.partition("_")
        path = f"{segment}-{field}" + (f".{components.replace('_', '.')}" if components else "")
    try:
        if parse_path(path).field is not None:
            return path
    except PathError:
        pass
    raise TypeError(f"unexpected override {key!r}: neither a header option nor an HL7 path")


def _random_time(rng: random.Random) -> datetime:
    """A moment in the year after the base date, between 06:30 and 21:30."""
    return _BASE + timedelta(days=rng.randrange(365), seconds=rng.randrange(23400, 77400))


def _control_id(rng: random.Random, when: datetime) -> str:
    """A 20-character MSH-10 (the v2.3 limit): the date and twelve random digits."""
    return f"{when:%Y%m%d}{rng.randrange(10**12):012d}"


def _slot(rng: random.Random, after: datetime, min_days: int, max_days: int) -> datetime:
    """An appointment start on a weekday, 08:00-16:45 on a quarter hour."""
    day = after + timedelta(days=rng.randint(min_days, max_days))
    day = day.replace(hour=0, minute=0, second=0, microsecond=0)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day + timedelta(minutes=rng.randrange(8 * 60, 17 * 60, 15))


def _add(msg: Message, name: str, fields: dict[int, Value]) -> None:
    """Append segment ``name`` and write ``fields`` by number (escaped by the builder)."""
    segment = msg.add_segment(name)
    for number, value in fields.items():
        segment.set(number, value)


def _xtn(ctx: _Context, phone: fake.Phone, use: str, equipment: str) -> Value:
    """XTN; before v2.5 XTN-1 is a TN, which has a strict format."""
    text = phone.text if ctx.since(2, 5) else phone.tn
    return (text, use, equipment, "", phone.country, phone.area, phone.local)


def _clerk(ctx: _Context) -> Value:
    """A front-desk user (XCN: login, family, given) who entered the event."""
    family, given = fake.random_name(ctx.rng, "")
    return (fake.ascii_fold(given[0] + family).lower().replace("'", "")[:8], family, given)


def _address(p: fake.Patient) -> Value:
    return (p.street, p.other_designation, p.city, p.state, p.postcode, p.country, "H")


def _pid(ctx: _Context, msg: Message, *, died: datetime | None = None) -> None:
    p, site = ctx.patient, ctx.site
    national = ("USSSA", "SS") if p.country == "USA" else ("AUSHIC", "MC")
    phones = [_xtn(ctx, p.home_phone, "PRN", "PH")]
    if p.mobile_phone is not None:
        phones.append(_xtn(ctx, p.mobile_phone, "PRN", "CP"))
    if p.email:
        phones.append(("", "NET", "Internet", p.email))
    fields: dict[int, Value] = {
        1: "1",
        3: [(p.mrn, "", "", site.code, "MR"), (p.national_id, "", "", *national)],
        5: (p.family, p.given, p.middle, "", "", "", "L"),
        7: p.birth_date,
        8: p.sex,
        11: _address(p),
        13: phones,
        15: (*p.language, "ISO6392"),
        16: (*p.marital, "HL70002") if ctx.since(2, 4) else p.marital[0],
        18: (p.account, "", "", site.code, "AN"),
    }
    if died is not None:
        fields.update({29: died, 30: "Y"})
    _add(msg, "PID", fields)


def _pv1(
    ctx: _Context,
    msg: Message,
    klass: str,
    department: str,
    doctor: fake.Practitioner,
    at: datetime,
) -> None:
    """PV1 for patient class ``klass`` (I, O, E) admitted or registered ``at``.

    Outpatients are seen in ``department``; inpatients are on a ward, ED patients in a bay.
    """
    rng, code = ctx.rng, ctx.site.code
    ward = rng.choice(("4E", "5W", "3N", "ICU"))
    location, service = {
        "I": ((ward, f"{ward[0]}{rng.randrange(1, 30):02d}", rng.choice("AB"), code), rng.choice(("MED", "SUR", "CAR"))),
        "E": (("ED", f"BAY{rng.randrange(1, 25)}", "", code), "EMR"),
    }.get(klass, ((department, "", "", code), department))  # fmt: skip
    admission_type = {"I": rng.choice("ERU"), "E": "E"}.get(klass, "")
    _add(msg, "PV1", {
        1: "1", 2: klass, 3: location, 4: admission_type,
        7: doctor.xcn() if klass in ("I", "E") else "", 8: doctor.xcn(), 10: service,
        19: (f"V{rng.randrange(10**8, 10**9)}", "", "", code, "VN"), 44: at.replace(second=0),
    })  # fmt: skip


# -- radiology orders and reports ----------------------------------------------------


def _new_order(
    ctx: _Context, ordered: datetime, scheduled: datetime | None = None, filler: str = "RIS"
) -> _Order:
    """An order for the patient; ``scheduled`` follows the priority if not given.

    An imaging procedure is drawn even for lab orders, which ignore it.
    """
    rng, sex = ctx.rng, ctx.patient.sex
    procedure = rng.choice([p for p in fake.PROCEDURES if p.sex in ("", sex)])
    priority = rng.choices("RAS", weights=(80, 10, 10))[0]
    if scheduled is None and priority == "S":
        scheduled = ordered + timedelta(minutes=rng.randrange(30, 95, 5))
    elif scheduled is None:
        scheduled = _slot(rng, ordered, *((1, 2) if priority == "A" else (1, 21)))
    return _Order(
        placer=f"ORD{rng.randrange(10**7, 10**8)}",
        accession=f"{ctx.site.code[:2]}{rng.randrange(10**7, 10**8)}",
        filler=filler,
        procedure=procedure,
        reason=rng.choice(procedure.reasons),
        referrer=rng.choice(fake.REFERRERS[ctx.site.country]),
        practice=rng.choice(fake.PRACTICES[ctx.site.country]),
        priority=priority,
        ordered=ordered,
        scheduled=scheduled.replace(second=0),
        note=rng.choice(fake.CLINICAL_NOTES) if rng.random() < 0.5 else "",
    )


def _timing(order: _Order) -> Value:
    """TQ (ORC-7, OBR-27): start time and priority."""
    return ("", "", "", order.scheduled, "", order.priority)


def _orc(ctx: _Context, msg: Message, order: _Order, control: str, status: str) -> None:
    fields: dict[int, Value] = {
        1: control, 2: (order.placer, "EHR"), 3: (order.accession, order.filler), 5: status,
        7: _timing(order), 9: order.ordered, 12: order.referrer.xcn(), 17: (*order.practice, "L"),
    }  # fmt: skip
    if ctx.since(2, 4):
        fields[21] = (order.practice[1],)
    _add(msg, "ORC", fields)


def _imaging_obr(ctx: _Context, msg: Message, order: _Order, extra: dict[int, Value]) -> None:
    proc, acc = order.procedure, order.accession
    _add(msg, "OBR", {
        1: "1", 2: (order.placer, "EHR"), 3: (acc, order.filler), 4: (proc.code, proc.name, "C4"),
        6: order.scheduled, 13: order.note, 16: order.referrer.xcn(),
        18: acc, 19: f"RP{acc}", 20: f"SPS{acc}", 24: proc.modality, 27: _timing(order),
        30: ctx.rng.choice(("WALK", "WALK", "WHLC", "CART", "PORT")), 31: (*order.reason, "I10"),
        **extra,
    })  # fmt: skip


def _build_orm(ctx: _Context, msg: Message) -> None:
    rng = ctx.rng
    order = _new_order(ctx, ctx.now)
    _pid(ctx, msg)
    klass = "E" if order.priority == "S" else rng.choice("OOOI")
    _pv1(ctx, msg, klass, "RAD", order.referrer, ctx.now)
    _orc(ctx, msg, order, "NW", "SC")
    _imaging_obr(ctx, msg, order, {5: order.priority})
    if rng.random() < 0.25:
        _add(msg, "NTE", {1: "1", 2: "L", 3: rng.choice(fake.SCHEDULING_NOTES)})
    # IHE scheduled workflow: the study instance UID the modality will use
    _add(msg, "ZDS", {1: (f"2.25.{rng.getrandbits(122)}", "PACS", "Application", "DICOM")})


def _build_oru_rad(ctx: _Context, msg: Message) -> None:
    rng, now = ctx.rng, ctx.now
    performed = (now - timedelta(minutes=rng.randrange(20, 2 * 24 * 60))).replace(second=0)
    ordered = performed - timedelta(minutes=rng.randrange(60, 14 * 24 * 60))
    order = _new_order(ctx, ordered, performed)
    reader = rng.choice(fake.RADIOLOGISTS[ctx.site.country])
    findings, impression = rng.choice(order.procedure.reports)
    _pid(ctx, msg)
    _pv1(ctx, msg, rng.choice("OOEI"), "RAD", order.referrer, ordered)
    _orc(ctx, msg, order, "RE", "CM")
    _imaging_obr(ctx, msg, order, {7: performed, 22: now, 25: "F", 32: (reader.xcn(),)})
    history = order.reason[1] + (f". {order.note}" if order.note else "")
    report = fake.rtf_document([
        ("EXAMINATION", [order.procedure.name]),
        ("CLINICAL HISTORY", [history]),
        ("TECHNIQUE", [order.procedure.technique]),
        ("FINDINGS", findings),
        ("IMPRESSION", [impression]),
        ("SIGNED", [f"{reader.display}, {ctx.site.name}, {now:%Y-%m-%d %H:%M}"]),
    ])  # fmt: skip
    encoded = base64.b64encode(report.encode("ascii")).decode("ascii")
    observations: list[tuple[str, Value, str, Value]] = [
        ("TX", ("18782-3", "Radiology Study observation (narrative)", "LN"), "1", line)
        for line in findings
    ]
    observations += [
        ("FT", ("19005-8", "Radiology Imaging study [Impression] (narrative)", "LN"), "2", impression),
        ("ED", ("18748-4", "Diagnostic imaging study", "LN"), "3", ("", "application", "rtf", "Base64", encoded)),
    ]  # fmt: skip
    for number, (value_type, code, sub_id, value) in enumerate(observations, 1):
        fields: dict[int, Value] = {
            1: str(number), 2: value_type, 3: code, 4: sub_id, 5: value, 11: "F",
            14: performed, 16: reader.xcn(),
        }  # fmt: skip
        if ctx.since(2, 5, 1):
            fields[23] = (ctx.site.name,)
        _add(msg, "OBX", fields)


def _build_oru_lab(ctx: _Context, msg: Message) -> None:
    rng, now, site = ctx.rng, ctx.now, ctx.site
    panel = rng.choice(fake.LAB_PANELS)
    collected = (now - timedelta(minutes=rng.randrange(60, 8 * 60))).replace(second=0)
    ordered = collected - timedelta(minutes=rng.randrange(5, 3 * 24 * 60))
    order = _new_order(ctx, ordered, collected, filler="LIS")
    _pid(ctx, msg)
    _pv1(ctx, msg, rng.choice("OOIE"), "LAB", order.referrer, ordered)
    _orc(ctx, msg, order, "RE", "CM")
    _add(msg, "OBR", {
        1: "1", 2: (order.placer, "EHR"), 3: (order.accession, order.filler),
        4: (panel.code, panel.name, "LN"), 7: collected,
        14: collected + timedelta(minutes=rng.randrange(10, 50)), 16: order.referrer.xcn(),
        22: now, 24: panel.section, 25: "F", 27: _timing(order),
    })  # fmt: skip
    for number, analyte in enumerate(panel.analytes, 1):
        value, flag = analyte.sample(rng)
        units: Value = (analyte.unit, analyte.unit, "UCUM") if ctx.since(2, 5) else analyte.unit
        fields: dict[int, Value] = {
            1: str(number), 2: "NM", 3: (analyte.code, analyte.name, "LN"), 4: "1", 5: value, 6: units,
            7: analyte.reference_range, 8: flag, 11: "F", 14: collected,
        }  # fmt: skip
        if ctx.since(2, 5, 1):
            fields[23] = (site.name,)
        _add(msg, "OBX", fields)
        if flag in ("HH", "LL"):
            called = now - timedelta(minutes=rng.randrange(1, 30))
            text = (
                f"Critical value phoned to {order.referrer.display} & read back at {called:%H:%M}"
            )
            _add(msg, "NTE", {1: "1", 2: "L", 3: text})


# -- ADT -----------------------------------------------------------------------------


def _evn(ctx: _Context, msg: Message, event: str, occurred: datetime) -> None:
    fields: dict[int, Value] = {1: event, 2: ctx.now, 6: occurred}
    if ctx.since(2, 4):
        fields[7] = ctx.site.code
    _add(msg, "EVN", fields)


def _pd1_nk1(ctx: _Context, msg: Message, doctor: fake.Practitioner) -> None:
    rng, p = ctx.rng, ctx.patient
    _add(msg, "PD1", {3: (rng.choice(fake.PRACTICES[p.country])[1],), 4: doctor.xcn()})
    if rng.random() < 0.4:
        return
    adult = (ctx.now.date() - p.birth_date).days >= 18 * 365
    relation = rng.choice((("SPO", "Spouse"), ("CHD", "Child"))) if adult else ("MTH", "Mother")
    family, given = fake.random_name(rng, "F" if relation[0] == "MTH" else "")
    _add(msg, "NK1", {
        1: "1", 2: (p.family if rng.random() < 0.6 else family, given), 3: (*relation, "HL70063"),
        4: _address(p), 5: _xtn(ctx, p.home_phone, "PRN", "PH"), 7: ("EC", "Emergency Contact", "HL70131"),
    })  # fmt: skip


def _adt(event: str) -> Callable[[_Context, Message], None]:
    def build(ctx: _Context, msg: Message) -> None:
        rng, now = ctx.rng, ctx.now
        doctor = rng.choice(fake.REFERRERS[ctx.site.country])
        occurred = now - timedelta(minutes=rng.randrange(1, 15))
        _evn(ctx, msg, event, occurred)
        died = None
        if event == "A08" and rng.random() < 0.15:
            died = (now - timedelta(minutes=rng.randrange(60, 3 * 24 * 60))).replace(second=0)
        _pid(ctx, msg, died=died)
        if event in ("A01", "A04"):
            _pd1_nk1(ctx, msg, doctor)
        klass = {"A01": "I", "A04": rng.choice("OOE")}.get(event, rng.choice("IO"))
        admitted = occurred if event != "A08" else now - timedelta(hours=rng.randrange(2, 96))
        _pv1(ctx, msg, klass, "OPD", doctor, admitted)
        if event == "A01" or rng.random() < 0.2:
            for number in range(1, rng.choice((1, 1, 2)) + 1):
                kind, allergen, severity, reaction = rng.choice(fake.ALLERGIES)
                _add(msg, "AL1", {1: str(number), 2: kind, 3: allergen, 4: severity, 5: reaction})
        if event == "A01":
            code = rng.choice(fake.ADMIT_REASONS)
            _add(msg, "DG1", {1: "1", 2: "I10", 3: (*code, "I10"), 5: occurred, 6: "A"})

    return build


def _build_adt_a40(ctx: _Context, msg: Message) -> None:
    rng, p, code = ctx.rng, ctx.patient, ctx.site.code
    _evn(ctx, msg, "A40", ctx.now - timedelta(minutes=rng.randrange(1, 15)))
    _pid(ctx, msg)
    # The duplicate record was typically registered with the accents lost.
    _add(msg, "MRG", {
        1: (f"{code[:2]}{rng.randrange(10**6, 10**7)}", "", "", code, "MR"),
        3: (f"A{rng.randrange(10**8, 10**9)}", "", "", code, "AN"),
        7: (fake.ascii_fold(p.family), fake.ascii_fold(p.given)),
    })  # fmt: skip


# -- scheduling ----------------------------------------------------------------------

# trigger: resource action code (HL7 0206), filler status (HL7 0278), event reason
_SIU_EVENTS = {
    "S12": ("A", "Booked", ("NEW", "New appointment booked")),
    "S13": ("U", "Booked", ("RESCHED", "Rescheduled at patient request")),
    "S14": ("U", "Booked", ("MODIFY", "Appointment details changed")),
    "S15": ("D", "Cancelled", ("CANCEL", "Cancelled at patient request")),
}


def _siu(trigger: str) -> Callable[[_Context, Message], None]:
    def build(ctx: _Context, msg: Message) -> None:
        rng, now, site = ctx.rng, ctx.now, ctx.site
        action, status, reason = _SIU_EVENTS[trigger]
        booked = now if trigger == "S12" else now - timedelta(days=rng.randrange(1, 10))
        order = _new_order(
            ctx, booked - timedelta(hours=rng.randrange(1, 72)), _slot(rng, now, 1, 30)
        )
        start, proc = order.scheduled, order.procedure
        minutes = proc.minutes + (15 if trigger == "S14" else 0)
        note = rng.choice(fake.SCHEDULING_NOTES) if rng.random() < 0.4 else ""
        if trigger == "S13":
            while start == order.scheduled:
                start = _slot(rng, now, 1, 30)
            note = f"Moved from {order.scheduled:%Y-%m-%d %H:%M} at patient request"
        end = start + timedelta(minutes=minutes)
        room = f"{proc.modality}{rng.randint(1, 3)}"
        radiologist = rng.choice(fake.RADIOLOGISTS[site.country])
        sch: dict[int, Value] = {
            1: (f"A{rng.randrange(10**7, 10**8)}", "EHR"), 2: (str(rng.randrange(10**6, 10**7)), "RIS"),
            5: (room, f"{_ROOMS[proc.modality]} {room[-1]}"), 6: (*reason, "L"),
            7: ("ROUTINE", "Routine appointment", "HL70276"), 8: ("NORMAL", "Routine schedule request", "HL70277"),
            9: str(minutes), 10: ctx.minutes(), 11: ("", "", f"M{minutes}", start, end, order.priority),
            16: radiologist.xcn(), 20: _clerk(ctx), 25: status,
        }  # fmt: skip
        if ctx.since(2, 4):
            sch.update({26: (order.placer, "EHR"), 27: (order.accession, order.filler)})
        _add(msg, "SCH", sch)
        if ctx.since(2, 5):
            tq1: dict[int, Value] = {1: "1", 7: start, 8: end, 9: (order.priority, "", "HL70485")}
            _add(msg, "TQ1", {**tq1, 13: (str(minutes), ctx.minutes())})
        if note:
            _add(msg, "NTE", {1: "1", 2: "L", 3: note})
        _pid(ctx, msg)
        _pv1(ctx, msg, "O", "RAD", order.referrer, start)
        _add(msg, "RGS", {1: "1", 2: action})
        timing: dict[int, Value] = {9: str(minutes), 10: ctx.minutes(), 12: status}
        _add(msg, "AIS", {
            1: "1", 2: action, 3: (proc.code, proc.name, "C4"), 4: start,
            7: str(minutes), 8: ctx.minutes(), 10: status,
        })  # fmt: skip
        place = ("RAD", room, "", site.code, "", "", "", "", f"{site.name} {_ROOMS[proc.modality]}")
        kind = ("D", "Department", "HL70305")
        _add(msg, "AIL", {1: "1", 2: action, 3: place, 4: kind, 6: start, **timing})
        role = ("RAD", "Radiologist", "L")
        _add(msg, "AIP", {1: "1", 2: action, 3: radiologist.xcn(), 4: role, 6: start, **timing})

    return build


# -- the kinds -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Kind:
    message_type: str
    structure: str
    senders: tuple[str, ...]
    receivers: tuple[str, ...]
    build: Callable[[_Context, Message], None]


_ADT_FROM, _ADT_TO = ("ADT", "EHR", "PAS"), ("RIS", "LIS", "PACS")
_KINDS = {
    "orm": _Kind("ORM^O01", "ORM_O01", ("EHR", "ORDERCOMMS"), ("RIS",), _build_orm),
    "oru_rad": _Kind("ORU^R01", "ORU_R01", ("RIS", "PACS"), ("EHR",), _build_oru_rad),
    "oru_lab": _Kind("ORU^R01", "ORU_R01", ("LIS",), ("EHR",), _build_oru_lab),
    "adt_a01": _Kind("ADT^A01", "ADT_A01", _ADT_FROM, _ADT_TO, _adt("A01")),
    "adt_a04": _Kind("ADT^A04", "ADT_A01", _ADT_FROM, _ADT_TO, _adt("A04")),
    "adt_a08": _Kind("ADT^A08", "ADT_A01", _ADT_FROM, _ADT_TO, _adt("A08")),
    "adt_a40": _Kind("ADT^A40", "ADT_A39", _ADT_FROM, _ADT_TO, _build_adt_a40),
    **{
        f"siu_s{n}": _Kind(f"SIU^S{n}", "SIU_S12", ("RIS", "SCHED"), ("EHR", "PACS"), _siu(f"S{n}"))
        for n in (12, 13, 14, 15)
    },
}
