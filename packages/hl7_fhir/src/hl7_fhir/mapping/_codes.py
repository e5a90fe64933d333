"""Code systems and the HL7 V2-to-FHIR IG concept maps this mapper uses.

Each map is plain data (v2 code -> FHIR code), named after the IG ConceptMap it follows,
so docs/mapping.md can list them and a reviewer can compare line by line.
"""

from __future__ import annotations

__all__ = [
    "ADDRESS_USE",
    "CODE_SYSTEMS",
    "GENDER",
    "IDENTIFIER_TYPES",
    "MARITAL_STATUS",
    "NAME_USE",
    "TELECOM_EQUIPMENT",
    "TELECOM_USE",
    "V2_TABLE",
    "V3_MARITAL",
    "code_system_uri",
    "v2_table_uri",
]

V2_TABLE = "http://terminology.hl7.org/CodeSystem/v2-{table}"
V3_MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"


def v2_table_uri(table: str) -> str:
    """The terminology.hl7.org URI of an HL7-defined v2 table: ``0203`` -> ``.../v2-0203``."""
    return V2_TABLE.format(table=table.zfill(4))


# HL7 table 0396 (coding system) -> FHIR system URI.
CODE_SYSTEMS = {
    "LN": "http://loinc.org",
    "LOINC": "http://loinc.org",
    "SCT": "http://snomed.info/sct",
    "SNM": "http://snomed.info/sct",
    "SNOMED": "http://snomed.info/sct",
    "SNM3": "http://snomed.info/sct",
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "I10C": "http://hl7.org/fhir/sid/icd-10-cm",
    "ICD10CM": "http://hl7.org/fhir/sid/icd-10-cm",
    "I10P": "http://www.cms.gov/Medicare/Coding/ICD10",
    "I9": "http://hl7.org/fhir/sid/icd-9-cm",
    "I9C": "http://hl7.org/fhir/sid/icd-9-cm",
    "C4": "http://www.ama-assn.org/go/cpt",
    "CPT": "http://www.ama-assn.org/go/cpt",
    "C5": "http://www.ama-assn.org/go/cpt",
    "HCPCS": "urn:oid:2.16.840.1.113883.6.285",
    "UCUM": "http://unitsofmeasure.org",
    "ANS+": "http://unitsofmeasure.org",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "RXN": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "NDC": "http://hl7.org/fhir/sid/ndc",
    "CVX": "http://hl7.org/fhir/sid/cvx",
    "MVX": "http://terminology.hl7.org/CodeSystem/MVX",
    "NUCC": "http://nucc.org/provider-taxonomy",
    "DCM": "http://dicom.nema.org/resources/ontology/DCM",
    "ISO3166_1": "urn:iso:std:iso:3166",
    "ISO+": "urn:iso:std:iso:11073:10101",
    "CDCREC": "urn:oid:2.16.840.1.113883.6.238",
    "ISO639": "urn:ietf:bcp:47",
    "HL70005": "urn:oid:2.16.840.1.113883.6.238",
}


def code_system_uri(name: str) -> str | None:
    """The FHIR system for a v2 coding system name, ``None`` for local/unknown ones.

    ``HL7nnnn`` / ``HL7-nnnn`` become terminology.hl7.org v2 table URIs; OIDs become
    ``urn:oid:``; URIs pass through.

    >>> code_system_uri("LN"), code_system_uri("HL70078")
    ('http://loinc.org', 'http://terminology.hl7.org/CodeSystem/v2-0078')
    """
    name = name.strip()
    if not name:
        return None
    upper = name.upper()
    if upper in CODE_SYSTEMS:
        return CODE_SYSTEMS[upper]
    if upper.startswith("HL7") and upper[3:].lstrip("-").isdigit():
        return v2_table_uri(upper[3:].lstrip("-"))
    if all(part.isdigit() for part in name.split(".")) and "." in name:
        return f"urn:oid:{name}"
    if name.startswith(("http://", "https://", "urn:")):
        return name
    return None


# IG ConceptMap "AdministrativeSex" (table 0001 -> AdministrativeGender).
GENDER = {
    "F": "female",
    "M": "male",
    "O": "other",
    "U": "unknown",
    "A": "other",
    "N": "unknown",
    "X": "other",
}

# IG ConceptMap "NameType" (table 0200 -> HumanName.use).
NAME_USE = {
    "L": "official",
    "D": "usual",
    "A": "usual",
    "M": "maiden",
    "N": "nickname",
    "S": "anonymous",
    "T": "temp",
    "C": "official",
    "BAD": "old",
    "NOUSE": "old",
}

# IG ConceptMap "AddressType" (table 0190 -> Address.use / Address.type).
ADDRESS_USE = {
    "H": ("home", None),
    "P": ("home", None),
    "RH": ("home", None),
    "B": ("work", None),
    "O": ("work", None),
    "C": ("temp", None),
    "BA": ("old", None),
    "M": (None, "postal"),
    "SH": (None, "postal"),
    "BI": ("billing", None),
}

# IG ConceptMaps "TelecommunicationUseCode" (0201) and "TelecommunicationEquipmentType" (0202).
TELECOM_USE = {"PRN": "home", "ORN": "home", "VHN": "home", "WPN": "work", "PRS": "mobile"}
TELECOM_EQUIPMENT = {
    "PH": "phone",
    "CP": "phone",
    "FX": "fax",
    "BP": "pager",
    "INTERNET": "email",
    "X.400": "email",
    "MD": "other",
    "TDD": "other",
    "TTY": "other",
    "SAT": "phone",
}

# Table 0002 -> v3 MaritalStatus (the FHIR binding); the v2 coding is kept beside it.
MARITAL_STATUS = {
    "A": ("L", "Legally Separated"),
    "D": ("D", "Divorced"),
    "M": ("M", "Married"),
    "S": ("S", "Never Married"),
    "W": ("W", "Widowed"),
    "C": ("T", "Domestic partner"),
    "P": ("T", "Domestic partner"),
    "I": ("I", "Interlocutory"),
    "L": ("L", "Legally Separated"),
    "T": ("T", "Domestic partner"),
    "U": ("UNK", "unknown"),
    "N": ("A", "Annulled"),
}

# Table 0203 displays for the identifier types the radiology and lab flows use most.
IDENTIFIER_TYPES = {
    "MR": "Medical record number",
    "PI": "Patient internal identifier",
    "SS": "Social Security number",
    "DL": "Driver's license number",
    "PPN": "Passport number",
    "MC": "Patient's Medicare number",
    "MA": "Patient Medicaid number",
    "NI": "National unique individual identifier",
    "NH": "National Health Plan Identifier",
    "PN": "Person number",
    "AN": "Account number",
    "VN": "Visit number",
    "PLAC": "Placer Identifier",
    "FILL": "Filler Identifier",
    "ACSN": "Accession ID",
    "PRN": "Provider number",
    "NPI": "National provider identifier",
    "EI": "Employee number",
    "FI": "Facility ID",
    "SB": "Social Beneficiary Identifier",
    "DN": "Doctor number",
    "LN": "License number",
}
