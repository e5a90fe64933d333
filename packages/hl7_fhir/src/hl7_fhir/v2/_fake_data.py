"""Pools of realistic fake data for :mod:`._generate`: people, places and codes.

Everything here is invented: phone numbers sit in ranges reserved for fiction (US
555-01xx, Australian 5550 xxxx and 0491 57x xxx), national ids start with digits that
are never issued, e-mail goes to example.com. Codes are real (LOINC, CPT, ICD-10-CM,
UCUM) so that downstream mapping sees what it would see in production. Names keep to
ISO-8859-1 so that messages declaring ``8859/1`` (v2.3) can carry them.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

__all__ = [
    "ADMIT_REASONS",
    "ALLERGIES",
    "CLINICAL_NOTES",
    "LAB_PANELS",
    "PRACTICES",
    "PROCEDURES",
    "RADIOLOGISTS",
    "REFERRERS",
    "SCHEDULING_NOTES",
    "SITES",
    "Analyte",
    "Panel",
    "Patient",
    "Phone",
    "Practitioner",
    "Procedure",
    "Site",
    "ascii_fold",
    "make_patient",
    "random_name",
    "rtf_document",
]


# -- places ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Phone:
    """A number as written in XTN-1, plus its country/area/local parts (XTN-5..7)."""

    text: str
    country: str
    area: str
    local: str

    @property
    def tn(self) -> str:
        """The number in the v2.3/2.4 TN format, ``[(999)]999-9999``: no spaces allowed."""
        if self.country == "1":
            return self.text
        if self.area:
            return f"(0{self.area}){self.local[:4]}-{self.local[4:]}"
        return f"0{self.local[:3]}-{self.local[3:]}"


@dataclass(frozen=True, slots=True)
class Site:
    """A facility: its HD namespace (MSH-4, assigning authority) and its country."""

    code: str
    name: str
    country: str  # "USA" or "AUS" (ISO 3166 alpha-3, as XAD-6 wants it)


SITES = (
    Site("MERCY", "Mercy General Hospital", "USA"),
    Site("STLUKE", "St. Luke's Medical Center", "USA"),
    Site("SSRAD", "Smith & Sons Radiology", "USA"),
    Site("NORTHSIDE", "Northside Private Hospital", "AUS"),
    Site("AXIS", "Axis Imaging & Nuclear Medicine", "AUS"),
)

# city, state, postcode, area code
_CITIES = {
    "USA": (
        ("Boston", "MA", "02118", "617"),
        ("Cambridge", "MA", "02139", "617"),
        ("Springfield", "IL", "62704", "217"),
        ("Madison", "WI", "53703", "608"),
        ("Portland", "OR", "97205", "503"),
        ("Austin", "TX", "78701", "512"),
        ("San Antonio", "TX", "78205", "210"),
        ("Denver", "CO", "80203", "303"),
        ("Phoenix", "AZ", "85004", "602"),
        ("Columbus", "OH", "43215", "614"),
        ("Raleigh", "NC", "27601", "919"),
        ("Albuquerque", "NM", "87102", "505"),
    ),
    "AUS": (
        ("Melbourne", "VIC", "3000", "3"),
        ("Richmond", "VIC", "3121", "3"),
        ("Geelong", "VIC", "3220", "3"),
        ("Brisbane", "QLD", "4000", "7"),
        ("Toowong", "QLD", "4066", "7"),
        ("Sydney", "NSW", "2000", "2"),
        ("Parramatta", "NSW", "2150", "2"),
        ("Adelaide", "SA", "5000", "8"),
        ("Perth", "WA", "6000", "8"),
        ("Hobart", "TAS", "7000", "3"),
    ),
}
_STREETS = {
    "USA": (
        "Main St", "Oak Ave", "Maple Dr", "Elm St", "Cedar Ln", "Washington Blvd",
        "Lakeview Rd", "Park Ave", "Pine St", "Highland Ave", "Church St", "Martin Luther King Jr Blvd",
    ),
    "AUS": (
        "High St", "Victoria Pde", "Station St", "George St", "Queen St", "O'Connell St",
        "King William St", "Bridge Rd", "Beach Rd", "Punt Rd", "Chapel St", "Swan St",
    ),
}  # fmt: skip
_UNITS = {"USA": ("Apt 2B", "Apt 14", "Suite 300", "Unit 7"), "AUS": ("Unit 3", "Flat 2", "Lvl 4")}


def _phone(rng: random.Random, country: str, area: str, mobile: bool) -> Phone:
    if country == "USA":
        area = rng.choice(("617", "857", "312", "415", "720")) if mobile else area
        local = f"5550{rng.randrange(100, 200):03d}"
        return Phone(f"({area}){local[:3]}-{local[3:]}", "1", area, local)
    if mobile:
        local = f"49157{rng.randrange(10000):04d}"
        return Phone(f"0{local[:3]} {local[3:6]} {local[6:]}", "61", "", local)
    local = f"5550{rng.randrange(10000):04d}"
    return Phone(f"(0{area}) {local[:4]} {local[4:]}", "61", area, local)


# -- people ------------------------------------------------------------------------

_FAMILY = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor",
    "Anderson", "Thompson", "Martin", "Lee", "Walker", "Harris", "Young", "King", "Wright",
    "Nguyen", "Tran", "Chen", "Wang", "Kim", "Patel", "Singh", "Haddad", "Okafor",
    "O'Brien", "O'Sullivan", "D'Angelo", "MacDonald", "McKenzie", "Van der Berg",
    "García", "Núñez", "Sánchez", "Ramírez", "Díaz", "Peña", "Müller", "Chalmérs",
    "Papadopoulos", "Rossi", "Kowalski", "Ngata", "Björk", "Lefèvre", "Jensen",
)  # fmt: skip
_GIVEN = {
    "M": (
        "James", "John", "Robert", "Michael", "William", "David", "Daniel", "Thomas", "Liam",
        "Noah", "Oliver", "Ethan", "Lucas", "José", "Luis", "Mateo", "Wei", "Hiroshi",
        "Mohammed", "Rajesh", "Seán", "François", "Jürgen", "Søren", "Nikolaos", "Tane",
    ),
    "F": (
        "Mary", "Patricia", "Jennifer", "Linda", "Emma", "Olivia", "Ava", "Sophia", "Charlotte",
        "Amelia", "Zoë", "Chloé", "Siobhán", "María", "Inés", "Renée", "Mei", "Priya", "Aisha",
        "Thi Lan", "Eleni", "Aroha", "Ingrid", "Mary-Kate", "Giulia", "Hannah",
    ),
}  # fmt: skip
_INITIALS = ("A", "B", "J", "K", "L", "M", "R")
_MIDDLE = {
    "M": (*_INITIALS, "James", "Lee", "Alexander"),
    "F": (*_INITIALS, "Anne", "Marie", "Elizabeth"),
}

_MARITAL = (("M", "Married"), ("S", "Single"), ("D", "Divorced"), ("W", "Widowed"))
_LANGUAGES = {
    "USA": (("eng", "English"),) * 6 + (("spa", "Spanish"), ("vie", "Vietnamese"), ("zho", "Chinese")),
    "AUS": (("eng", "English"),) * 6 + (("ita", "Italian"), ("ell", "Greek"), ("vie", "Vietnamese"), ("ara", "Arabic")),
}  # fmt: skip


def ascii_fold(text: str) -> str:
    """``"Zoë Chalmérs"`` -> ``"Zoe Chalmers"`` (for e-mail addresses and ids)."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


@dataclass(frozen=True, slots=True)
class Patient:
    """One fake person, used for every segment of a message that mentions them."""

    mrn: str
    national_id: str
    family: str
    given: str
    middle: str
    sex: str
    birth_date: date
    street: str
    other_designation: str
    city: str
    state: str
    postcode: str
    country: str
    home_phone: Phone
    mobile_phone: Phone | None
    email: str
    marital: tuple[str, str]
    language: tuple[str, str]
    account: str


def random_name(rng: random.Random, sex: str) -> tuple[str, str]:
    """A (family, given) pair; the given name fits ``sex`` (M/F, anything else: either)."""
    return rng.choice(_FAMILY), rng.choice(_GIVEN.get(sex, _GIVEN["F"] + _GIVEN["M"]))


def make_patient(rng: random.Random, site: Site, now: datetime) -> Patient:
    """A patient living near ``site``, born plausibly long before ``now``."""
    country = site.country
    sex = rng.choices(("F", "M", "U"), weights=(50, 49, 1))[0]
    family, given = random_name(rng, sex)
    age = rng.choices(
        (rng.randrange(0, 18), rng.randrange(18, 65), rng.randrange(65, 97)), (1, 5, 3)
    )[0]
    birth = now.date() - timedelta(days=age * 365 + rng.randrange(365))
    city, state, postcode, area = rng.choice(_CITIES[country])
    street = f"{rng.randrange(1, 2400)} {rng.choice(_STREETS[country])}"
    unit = rng.choice(_UNITS[country]) if rng.random() < 0.25 else ""
    mobile = _phone(rng, country, area, mobile=True) if age >= 14 and rng.random() < 0.8 else None
    handle = ascii_fold(f"{given}.{family}").lower().replace(" ", "").replace("'", "")
    email = f"{handle}{rng.randrange(10, 99)}@example.com" if rng.random() < 0.4 else ""
    marital = _MARITAL[1] if age < 18 else rng.choice(_MARITAL)
    if country == "USA":
        national = f"9{rng.randrange(10**8):08d}"  # SSNs starting with 9 are never issued
    else:
        national = f"{rng.randrange(2, 7)}{rng.randrange(10**9):09d}"
    return Patient(
        mrn=f"{site.code[:2]}{rng.randrange(10**6, 10**7)}",
        national_id=national,
        family=family,
        given=given,
        middle=rng.choice(_MIDDLE.get(sex, _INITIALS)) if rng.random() < 0.5 else "",
        sex=sex,
        birth_date=birth,
        street=street,
        other_designation=unit,
        city=city,
        state=state,
        postcode=postcode,
        country=country,
        home_phone=_phone(rng, country, area, mobile=False),
        mobile_phone=mobile,
        email=email,
        marital=marital,
        language=rng.choice(_LANGUAGES[country]),
        account=f"A{rng.randrange(10**8, 10**9)}",
    )


# -- practitioners -----------------------------------------------------------------


def _npi(stem: str) -> str:
    """A 10-digit NPI with its Luhn check digit (computed over the 80840 prefix)."""
    digits = [int(c) for c in "80840" + stem]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return stem + str((10 - total % 10) % 10)


@dataclass(frozen=True, slots=True)
class Practitioner:
    """A clinician as an XCN: id, name, prefix, degree, assigning authority."""

    id: str
    family: str
    given: str
    middle: str
    degree: str
    authority: str

    def xcn(self) -> tuple[str, ...]:
        return (
            self.id,
            self.family,
            self.given,
            self.middle,
            "",
            "Dr",
            self.degree,
            "",
            self.authority,
        )

    @property
    def display(self) -> str:
        return f"Dr {self.given} {self.family}"


_US, _AU = "NPI", "AUSHICPR"
REFERRERS = {
    "USA": (
        Practitioner(_npi("134567890"), "Wilson", "Amanda", "J", "MD", _US),
        Practitioner(_npi("145678901"), "Patel", "Rajesh", "K", "MD", _US),
        Practitioner(_npi("156789012"), "O'Connor", "Siobhán", "M", "DO", _US),
        Practitioner(_npi("167890123"), "García-López", "María", "Elena", "MD", _US),
        Practitioner(_npi("178901234"), "Okafor", "Chinedu", "", "MD", _US),
    ),
    "AUS": (
        Practitioner("2345671A", "Jones", "Peter", "", "MBBS", _AU),
        Practitioner("4567892B", "Nguyen", "Thi Lan", "", "MBBS", _AU),
        Practitioner("3456783C", "Papadopoulos", "Eleni", "", "MBBS FRACGP", _AU),
        Practitioner("5678904D", "O'Sullivan", "Liam", "P", "MBBS", _AU),
    ),
}
RADIOLOGISTS = {
    "USA": (
        Practitioner(_npi("189012345"), "Lindqvist", "Ingrid", "", "MD", _US),
        Practitioner(_npi("190123456"), "Núñez", "José", "A", "MD", _US),
        Practitioner(_npi("112345678"), "Thompson", "Robert", "L", "MD", _US),
        Practitioner(_npi("123456789"), "Haddad", "Leila", "", "MD", _US),
    ),
    "AUS": (
        Practitioner("6789015E", "Ngata", "Aroha", "", "FRANZCR", _AU),
        Practitioner("7890126F", "Smith", "Sarah", "", "FRANZCR", _AU),
        Practitioner("8901237G", "D'Souza", "Ravi", "", "FRANZCR", _AU),
    ),
}
PRACTICES = {
    "USA": (("SSFM", "Smith & Sons Family Medicine"), ("BHMG", "Bay & Harbor Medical Group"),
            ("RSPED", "Riverside Pediatrics"), ("MERCYIM", "Mercy Internal Medicine")),
    "AUS": (("NMC", "Northcote Medical Centre"), ("SPGP", "Smith & Partners General Practice"),
            ("BAYGP", "Bayside GP Clinic")),
}  # fmt: skip


# -- codes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Procedure:
    """An imaging procedure (CPT), its modality, typical reasons and report texts."""

    code: str
    name: str
    modality: str
    minutes: int
    technique: str
    reasons: tuple[tuple[str, str], ...]  # ICD-10-CM code, text
    reports: tuple[tuple[tuple[str, ...], str], ...]  # (findings lines, impression)
    sex: str = ""  # "F"/"M" when the procedure only fits one sex


_NORMAL_CHEST = (
    ("The lungs are clear.", "No pleural effusion or pneumothorax.",
     "Cardiomediastinal silhouette is within normal limits.", "No acute osseous abnormality."),
    "No acute cardiopulmonary process.",
)  # fmt: skip
PROCEDURES = (
    Procedure("71046", "XR CHEST 2 VIEWS", "XR", 15, "PA and lateral views of the chest.",
              (("R05.9", "Cough, unspecified"), ("R06.02", "Shortness of breath"), ("R50.9", "Fever, unspecified")),
              (_NORMAL_CHEST,
               (("Patchy airspace opacity in the right lower lobe.", "Small right pleural effusion.",
                 "Heart size is normal. No pneumothorax."),
                "Right lower lobe pneumonia with small parapneumonic effusion. Follow-up radiograph in 6-8 weeks."))),
    Procedure("73110", "XR WRIST 3+ VIEWS RIGHT", "XR", 15, "PA, oblique and lateral views of the right wrist.",
              (("M25.531", "Pain in right wrist"), ("S69.91XA", "Unspecified injury of right wrist, hand and finger(s), initial encounter")),
              ((("No acute fracture or dislocation.", "Joint spaces are preserved.", "Soft tissues are unremarkable."),
                "No acute osseous abnormality."),
               (("Transverse fracture of the distal radial metaphysis with 10 degrees of dorsal angulation.",
                 "Ulnar styloid is intact.", "Dorsal soft tissue swelling."),
                "Distal radius fracture (Colles type). Orthopaedic referral recommended."))),
    Procedure("70450", "CT HEAD W/O CONTRAST", "CT", 15, "Axial CT images of the head without contrast.",
              (("R51.9", "Headache, unspecified"), ("S06.0X0A", "Concussion without loss of consciousness, initial encounter"),
               ("R42", "Dizziness and giddiness")),
              ((("No intracranial hemorrhage, mass effect or midline shift.",
                 "Gray-white matter differentiation is preserved.", "Ventricles and sulci are normal for age.",
                 "Visualized paranasal sinuses and mastoid air cells are clear."),
                "No acute intracranial abnormality."),)),
    Procedure("71250", "CT CHEST W/O CONTRAST", "CT", 20, "Helical CT of the chest without contrast, 1.25 mm reconstructions.",
              (("R91.1", "Solitary pulmonary nodule"), ("Z87.891", "Personal history of nicotine dependence")),
              ((("4 mm solid nodule in the right upper lobe (series 3, image 45).",
                 "No mediastinal or hilar lymphadenopathy.", "No pleural effusion."),
                "Indeterminate 4 mm right upper lobe nodule; follow-up CT in 12 months per Fleischner guidelines."),
               (("Lungs are clear without nodules or consolidation.", "No lymphadenopathy.", "Heart and great vessels are normal."),
                "Normal CT chest."))),
    Procedure("74177", "CT ABDOMEN & PELVIS W/ CONTRAST", "CT", 30, "Helical CT of the abdomen and pelvis after IV contrast.",
              (("R10.9", "Unspecified abdominal pain"), ("R10.31", "Right lower quadrant pain")),
              ((("Liver, spleen, pancreas and adrenal glands are unremarkable.", "No hydronephrosis.",
                 "Appendix is normal.", "No free fluid or free air."),
                "No acute abdominopelvic abnormality."),
               (("Sigmoid colon wall thickening with pericolic fat stranding.",
                 "No extraluminal gas or drainable collection.", "Appendix is normal."),
                "Acute uncomplicated sigmoid diverticulitis."))),
    Procedure("70551", "MRI BRAIN W/O CONTRAST", "MR", 45, "Multiplanar multisequence MRI of the brain without contrast.",
              (("R51.9", "Headache, unspecified"), ("G43.909", "Migraine, unspecified, not intractable, without status migrainosus")),
              ((("No restricted diffusion to suggest acute infarct.",
                 "No intracranial mass, hemorrhage or extra-axial collection.", "Normal flow voids."),
                "Normal MRI of the brain."),)),
    Procedure("72148", "MRI LUMBAR SPINE W/O CONTRAST", "MR", 45, "Sagittal and axial T1 and T2 images of the lumbar spine.",
              (("M54.50", "Low back pain, unspecified"), ("M54.16", "Radiculopathy, lumbar region")),
              ((("L4-5: disc bulge with right paracentral protrusion contacting the traversing right L5 nerve root.",
                 "L5-S1: mild facet arthropathy; no canal stenosis.", "Conus terminates normally at L1."),
                "L4-5 right paracentral disc protrusion contacting the right L5 nerve root."),)),
    Procedure("73721", "MRI KNEE RIGHT W/O CONTRAST", "MR", 40, "Multiplanar proton density and T2 images of the right knee.",
              (("M25.561", "Pain in right knee"), ("S83.241A", "Other tear of medial meniscus, current injury, right knee, initial encounter")),
              ((("Oblique tear of the posterior horn of the medial meniscus extending to the inferior articular surface.",
                 "Cruciate and collateral ligaments are intact.", "Small joint effusion."),
                "Medial meniscal tear."),)),
    Procedure("76700", "US ABDOMEN COMPLETE", "US", 30, "Real-time grey-scale and colour Doppler ultrasound of the abdomen.",
              (("R10.11", "Right upper quadrant pain"), ("K80.20", "Calculus of gallbladder without cholecystitis without obstruction")),
              ((("Liver normal in size and echotexture.",
                 "Gallbladder contains multiple mobile calculi, largest 9 mm; no wall thickening.", "Common bile duct 4 mm."),
                "Cholelithiasis without sonographic evidence of acute cholecystitis."),
               (("Liver, gallbladder, pancreas, spleen and kidneys are normal.", "No free fluid."),
                "Normal abdominal ultrasound."))),
    Procedure("76856", "US PELVIS COMPLETE", "US", 30, "Transabdominal and transvaginal ultrasound of the pelvis.",
              (("R10.2", "Pelvic and perineal pain"), ("N94.6", "Dysmenorrhea, unspecified")),
              ((("Uterus is anteverted and normal in size; endometrium 7 mm.", "Both ovaries are normal.", "No free fluid."),
                "Normal pelvic ultrasound."),), sex="F"),
    Procedure("93880", "US DUPLEX CAROTID BILATERAL", "US", 45, "Grey-scale, colour and spectral Doppler of both carotid systems.",
              (("G45.9", "Transient cerebral ischemic attack, unspecified"), ("I65.23", "Occlusion and stenosis of bilateral carotid arteries")),
              ((("Mild calcified plaque at both carotid bulbs.", "Peak systolic velocities below 125 cm/s bilaterally.",
                 "Antegrade vertebral flow bilaterally."),
                "Less than 50% stenosis of both internal carotid arteries."),)),
    Procedure("78452", "NM MYOCARDIAL PERFUSION SPECT MULTIPLE", "NM", 180, "Tc-99m sestamibi rest/stress SPECT with gated imaging.",
              (("R07.9", "Chest pain, unspecified"), ("I25.10", "Atherosclerotic heart disease of native coronary artery without angina pectoris")),
              ((("Normal myocardial perfusion at stress and rest.",
                 "Left ventricular ejection fraction 62% with normal wall motion.", "No transient ischemic dilatation."),
                "No scintigraphic evidence of inducible ischemia or infarction."),)),
    Procedure("78306", "NM BONE SCAN WHOLE BODY", "NM", 240, "Whole-body planar imaging 3 hours after Tc-99m MDP.",
              (("C61", "Malignant neoplasm of prostate"),),
              ((("Physiologic radiotracer distribution throughout the skeleton.",
                 "No focal abnormal uptake to suggest osseous metastatic disease."),
                "No scintigraphic evidence of osseous metastases."),), sex="M"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Analyte:
    """A lab test (LOINC) with UCUM units, reference limits and reporting decimals."""

    code: str
    name: str
    unit: str
    low: float | None
    high: float | None
    decimals: int

    @property
    def reference_range(self) -> str:
        fmt = f"{{:.{self.decimals}f}}"
        if self.low is None:
            return f"<{fmt.format(self.high)}"
        if self.high is None:
            return f">{fmt.format(self.low)}"
        return f"{fmt.format(self.low)}-{fmt.format(self.high)}"

    def sample(self, rng: random.Random) -> tuple[str, str]:
        """A result as text with its abnormal flag (HL7 0078): mostly N, some H/L/HH/LL."""
        low, high = self.low, self.high
        lo = low if low is not None else (high or 0) * 0.5
        hi = high if high is not None else lo * 1.8
        roll = rng.random()
        if roll < 0.75:
            value = rng.uniform(lo, hi)
        elif roll < 0.87 and low is not None:
            value = lo * rng.uniform(0.7, 0.98)
        else:
            value = hi * rng.uniform(1.02, 1.8)
        text = f"{value:.{self.decimals}f}"
        number = float(text)
        flag = "N"
        if low is not None and number < low:
            flag = "LL" if number < low * 0.75 else "L"
        elif high is not None and number > high:
            flag = "HH" if number > high * 1.5 else "H"
        return text, flag


@dataclass(frozen=True, slots=True)
class Panel:
    code: str
    name: str
    section: str  # OBR-24 diagnostic service section (HL7 table 0074)
    analytes: tuple[Analyte, ...]


_GLU = Analyte("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 99, 0)
_BMP = (
    _GLU,
    Analyte("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", 7, 20, 0),
    Analyte("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.3, 2),
    Analyte("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 136, 145, 0),
    Analyte("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1, 1),
    Analyte("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", 98, 107, 0),
    Analyte(
        "2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "mmol/L", 22, 29, 0
    ),
    Analyte("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 8.6, 10.3, 1),
)
_LIVER = (
    Analyte("2885-2", "Protein [Mass/volume] in Serum or Plasma", "g/dL", 6.0, 8.3, 1),
    Analyte("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL", 3.5, 5.0, 1),
    Analyte("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL", 0.1, 1.2, 1),
    Analyte("6768-6", "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 44, 147, 0),
    Analyte("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 7, 56, 0),
    Analyte("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 10, 40, 0),
)  # fmt: skip
LAB_PANELS = (
    Panel("58410-2", "CBC panel - Blood by Automated count", "HM", (
        Analyte("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.0, 11.0, 1),
        Analyte("789-8", "Erythrocytes [#/volume] in Blood by Automated count", "10*6/uL", 4.2, 5.9, 2),
        Analyte("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 17.5, 1),
        Analyte("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", 36.0, 52.0, 1),
        Analyte("787-2", "MCV [Entitic volume] by Automated count", "fL", 80, 100, 0),
        Analyte("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 150, 400, 0),
    )),
    Panel("24321-2", "Basic metabolic 2000 panel - Serum or Plasma", "CH", _BMP),
    Panel("24323-8", "Comprehensive metabolic 2000 panel - Serum or Plasma", "CH", _BMP + _LIVER),
    Panel("24325-3", "Hepatic function 2000 panel - Serum or Plasma", "CH", _LIVER),
    Panel("24331-1", "Lipid 1996 panel - Serum or Plasma", "CH", (
        Analyte("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", None, 200, 0),
        Analyte("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", None, 150, 0),
        Analyte("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 40, None, 0),
        Analyte("13457-7", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation", "mg/dL", None, 100, 0),
    )),
    Panel("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "CH", (
        Analyte("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.0, 5.6, 1),
    )),
)  # fmt: skip

CLINICAL_NOTES = (
    "Pain & swelling after fall",
    "Cough > 3 weeks; ex-smoker (30 pack-years)",
    "Prior imaging at Smith & Sons Radiology 2023",
    "Follow-up of known finding | compare with prior",
    "Fever, ^ WCC & ^ CRP",
    "Worsening symptoms despite treatment",
)
SCHEDULING_NOTES = (
    "Patient is claustrophobic & may need sedation",
    "Prep: nothing by mouth for 4 hours | bring prior imaging",
    "Interpreter required (Spanish)",
    "Wheelchair access required",
    "Metal implant: confirm MRI safety card",
)
# AL1-2 allergen type (HL7 0127), allergen, AL1-4 severity (HL7 0128), AL1-5 reaction
ALLERGIES = (
    ("DA", ("70618", "Penicillin", "RXNORM"), "SV", "Anaphylaxis"),
    ("DA", ("2670", "Codeine", "RXNORM"), "MO", "Nausea & vomiting"),
    ("DA", ("1191", "Aspirin", "RXNORM"), "MI", "Rash"),
    ("MA", ("IODCON", "Iodinated contrast media", "L"), "MO", "Hives"),
    ("FA", ("PEANUT", "Peanut", "L"), "SV", "Throat swelling"),
)
ADMIT_REASONS = (
    ("J18.9", "Pneumonia, unspecified organism"),
    ("I21.4", "Non-ST elevation (NSTEMI) myocardial infarction"),
    ("K35.80", "Unspecified acute appendicitis"),
    ("S72.001A", "Fracture of unspecified part of neck of right femur, initial encounter"),
    ("I63.9", "Cerebral infarction, unspecified"),
    ("E11.9", "Type 2 diabetes mellitus without complications"),
)


# -- report documents --------------------------------------------------------------


def _rtf_text(text: str) -> str:
    out = []
    for char in text:
        if char in "\\{}":
            out.append("\\" + char)
        elif ord(char) > 127:
            code = ord(char)
            out.append(f"\\u{code if code < 32768 else code - 65536}?")
        else:
            out.append(char)
    return "".join(out)


def rtf_document(sections: Sequence[tuple[str, Sequence[str]]]) -> str:
    """A small valid RTF document: bold headings, a paragraph per line, non-ASCII as \\uN?."""
    lines = [r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Arial;}}\f0\fs20"]
    for heading, paragraphs in sections:
        lines.append(r"{\b " + _rtf_text(heading) + r":}\par")
        lines.extend(_rtf_text(text) + r"\par" for text in paragraphs)
    lines.append("}")
    return "\n".join(lines)
