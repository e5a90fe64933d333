"""The code tables orders and results use: HL7 V2-to-FHIR IG concept maps and codes.

Plain data, named after the IG ConceptMap each follows (completed where the IG is
silent; docs/mapping.md (Orders and results) lists every completion and why), plus the
OBR-24 diagnostic service section -> category helpers.
"""

from __future__ import annotations

from typing import Any

from ..v2 import Segment
from ._codes import v2_table_uri

__all__ = [
    "DICOM_MODALITIES",
    "DICOM_SYSTEM",
    "INTERPRETATION",
    "MODALITY_SECTIONS",
    "OBSERVATION_STATUS",
    "ORDER_CONTROL",
    "ORDER_STATUS",
    "PRIORITY",
    "REPORT_STATUS",
    "SECTIONS",
    "observation_category",
    "section_code",
    "service_category",
]

Json = dict[str, Any]

# IG ConceptMap OrderControlCode[ServiceRequest.status] (table 0119), completed where the
# IG is silent; CA and HD follow the request (see docs: deliberate differences).
ORDER_CONTROL = {
    **dict.fromkeys(
        ("NW", "OK", "SN", "NA", "XO", "XX", "XR", "SC", "RE", "RO", "RQ", "RL", "RP", "RU"),
        "active",
    ),
    **dict.fromkeys(("PA", "CH", "PR", "PY", "AF", "RF", "OF", "OR", "OE", "RR", "SR", "SS"), "active"),
    **dict.fromkeys(("UC", "UD", "UF", "UH", "UM", "UR", "UX", "LI", "UN", "CN", "CP"), "active"),
    **dict.fromkeys(("CA", "OC", "CR", "DC", "OD", "DR", "DF", "UA"), "revoked"),
    **dict.fromkeys(("HD", "OH", "HR"), "on-hold"),
    "FU": "completed",
    "DE": "unknown",
}  # fmt: skip
# IG ConceptMap OrderStatus (table 0038); ORC-5 wins over ORC-1 when sent.
ORDER_STATUS = {
    "CA": "revoked",
    "CM": "completed",
    "DC": "revoked",
    "ER": "entered-in-error",
    "HD": "on-hold",
    "IP": "active",
    "RP": "revoked",
    "SC": "active",
    "A": "active",
}
# Tables 0027 / 0485 (and the words senders write) -> request-priority.
PRIORITY = {
    "S": "stat", "STAT": "stat", "A": "asap", "ASAP": "asap", "R": "routine",
    "ROUTINE": "routine", "P": "urgent", "C": "urgent", "T": "urgent", "TS": "urgent",
    "URGENT": "urgent", "U": "urgent", "PRN": "routine", "TM": "routine",
}  # fmt: skip
# Table 0074 (IG ConceptMap DiagnosticServiceSectionID: identity), with displays.
SECTIONS = {
    "AU": "Audiology", "BG": "Blood Gases", "BLB": "Blood Bank", "CG": "Cytogenetics",
    "CUS": "Cardiac Ultrasound", "CTH": "Cardiac Catheterization", "CT": "CAT Scan",
    "CH": "Chemistry", "CP": "Cytopathology", "EC": "Electrocardiac (e.g., EKG,  EEC, Holter)",
    "EN": "Electroneuro (EEG, EMG,EP,PSG)", "GE": "Genetics", "HM": "Hematology",
    "ICU": "Bedside ICU Monitoring", "IMM": "Immunology", "LAB": "Laboratory",
    "MB": "Microbiology", "MCB": "Mycobacteriology", "MYC": "Mycology",
    "NMS": "Nuclear Medicine Scan", "NMR": "Nuclear Magnetic Resonance",
    "NRS": "Nursing Service Measures", "OUS": "OB Ultrasound", "OT": "Occupational Therapy",
    "OTH": "Other", "OSL": "Outside Lab", "PHR": "Pharmacy", "PT": "Physical Therapy",
    "PHY": "Physician (Hx. Dx, admission note, etc.)", "PF": "Pulmonary Function",
    "RAD": "Radiology", "RX": "Radiograph", "RUS": "Radiology Ultrasound",
    "RC": "Respiratory Care (therapy)", "RT": "Radiation Therapy", "SR": "Serology",
    "SP": "Surgical Pathology", "TX": "Toxicology", "VUS": "Vascular Ultrasound",
    "VR": "Virology", "XRC": "Cineradiograph",
}  # fmt: skip
# Modality codes radiology senders put in OBR-24 -> the table 0074 section they mean.
MODALITY_SECTIONS = {
    "XR": "RX", "CR": "RX", "DX": "RX", "MR": "NMR", "MRI": "NMR", "US": "RUS", "NM": "NMS",
    "PET": "NMS", "MG": "RAD", "XA": "RAD", "RF": "RAD", "IR": "RAD", "DXA": "RAD",
}  # fmt: skip
# DICOM modalities (CID 29), for a DICOM coding beside the v2 one.
DICOM_MODALITIES = {
    "CT": "Computed Tomography", "MR": "Magnetic Resonance", "US": "Ultrasound",
    "NM": "Nuclear Medicine", "CR": "Computed Radiography", "DX": "Digital Radiography",
    "MG": "Mammography", "PT": "Positron emission tomography (PET)",
    "XA": "X-Ray Angiography", "RF": "Radio Fluoroscopy", "IO": "Intra-oral Radiography",
    "PX": "Panoramic X-Ray", "BMD": "Bone Mineral Densitometry", "OT": "Other",
}  # fmt: skip
DICOM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
_LAB = frozenset(
    {"BG", "BLB", "CG", "CH", "CP", "GE", "HM", "IMM", "LAB", "MB", "MCB", "MYC", "OSL",
     "SP", "SR", "TX", "VR"}
)  # fmt: skip
_IMAGING = frozenset({"CT", "RAD", "RX", "RUS", "NMR", "NMS", "OUS", "VUS", "CUS", "XRC"})
_OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

# IG ConceptMap ResultStatus[Non-Queries] (table 0123), completed where it is silent
# (A, M, N). Y and Z ("no order", "no patient") are errors, as the IG says.
REPORT_STATUS = {
    "O": "registered",
    "I": "registered",
    "S": "registered",
    "A": "partial",
    "P": "preliminary",
    "C": "corrected",
    "R": "partial",
    "F": "final",
    "X": "cancelled",
    "M": "preliminary",
    "N": "partial",
}

# IG ConceptMap ObservationResultStatusCodesInterpretation (table 0085), completed where
# it is silent (I, R, S, U, V, B, N, O: see docs).
OBSERVATION_STATUS = {
    "F": "final",
    "P": "preliminary",
    "C": "corrected",
    "A": "amended",
    "B": "amended",
    "D": "entered-in-error",
    "W": "entered-in-error",
    "X": "cancelled",
    "I": "registered",
    "R": "preliminary",
    "S": "preliminary",
    "U": "final",
    "V": "final",
    "N": "final",
    "O": "final",
}
# IG ConceptMap InterpretationCodes (table 0078 -> v3 ObservationInterpretation).
INTERPRETATION = {
    "<": "Off scale low", ">": "Off scale high", "A": "Abnormal", "AA": "Critical abnormal",
    "B": "Better", "CAR": "Carrier", "D": "Significant change down", "DET": "Detected",
    "E": "Equivocal", "EX": "outside threshold", "EXP": "Expected", "H": "High",
    "HH": "Critical high", "HU": "Significantly high", "I": "Intermediate",
    "IE": "Insufficient evidence", "IND": "Indeterminate", "L": "Low", "LL": "Critical low",
    "LU": "Significantly low", "N": "Normal", "NCL": "No CLSI defined breakpoint",
    "ND": "Not detected", "NEG": "Negative", "NR": "Non-reactive", "NS": "Non-susceptible",
    "POS": "Positive", "R": "Resistant", "RR": "Reactive", "S": "Susceptible",
    "SDD": "Susceptible-dose dependent", "SYN-R": "Synergy - resistant",
    "SYN-S": "Synergy - susceptible", "U": "Significant change up", "UNE": "Unexpected",
    "W": "Worse", "WR": "Weakly reactive",
}  # fmt: skip


def _known_section(code: str) -> bool:
    return code in SECTIONS or code in MODALITY_SECTIONS or code in DICOM_MODALITIES


def section_code(obr: Segment | None) -> str:
    """OBR-24 (diagnostic service section). A sender that shifted OBR-24/25 one field
    to the left (a section code in OBR-23, "charge to practice", which never holds
    one; OBR-24 empty or holding a result status) is read as it meant."""
    if obr is None:
        return ""
    code = obr.get(24, 1, 1).strip()
    if _known_section(code.upper()):
        return code
    shifted = obr.get(23, 1, 1).strip()
    if (
        _known_section(shifted.upper())
        and not obr.get(23, 1, 2)
        and (not code or (code.upper() in REPORT_STATUS and not obr.get(25)))
    ):
        return shifted
    return code


def service_category(code: str) -> Json | None:
    """OBR-24 -> category: the table 0074 coding (modalities to their section), plus a
    DICOM modality coding when the code is one, the sent code as text."""
    code = code.strip()
    if not code:
        return None
    upper = code.upper()
    codings: list[Json] = []
    section = upper if upper in SECTIONS else MODALITY_SECTIONS.get(upper)
    if section:
        codings.append(
            {"system": v2_table_uri("0074"), "code": section, "display": SECTIONS[section]}
        )
    if upper in DICOM_MODALITIES:
        codings.append({"system": DICOM_SYSTEM, "code": upper, "display": DICOM_MODALITIES[upper]})
    concept: Json = {"text": code}
    if codings:
        concept["coding"] = codings
    return concept


def observation_category(code: str) -> Json | None:
    """Observation.category (laboratory / imaging) implied by the OBR-24 section."""
    upper = code.strip().upper()
    section = upper if upper in SECTIONS else MODALITY_SECTIONS.get(upper, "")
    if section in _LAB:
        kind = "laboratory"
    elif section in _IMAGING:
        kind = "imaging"
    else:
        return None
    return {"coding": [{"system": _OBS_CATEGORY, "code": kind, "display": kind.capitalize()}]}
