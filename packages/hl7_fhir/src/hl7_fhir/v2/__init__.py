"""HL7 v2: parse, read by path, build and edit, acknowledge.

>>> from hl7_fhir import v2
>>> msg = v2.parse(b"MSH|^~\\\\&|RIS|H|EHR|H|20250101||ORM^O01|42|P|2.5\\rPID|1||P001^^^AXIS^MR")
>>> msg["PID-3.1"], msg.control_id
('P001', '42')
>>> v2.build_ack(msg)["MSA-1"]
'AA'
"""

from ._ack import ERROR_CODES, ErrorDetail, build_ack, new_control_id, peek_control_id
from ._batch import parse_batch, split_messages
from ._builder import new_message
from ._charset import python_codec
from ._datetime import HL7DateTime, Precision, format_datetime, parse_datetime
from ._encoding import DEFAULT_ENCODING, Encoding, escape, unescape
from ._generate import MESSAGE_KINDS, generate, generate_many
from ._message import Message, parse, parse_version, standard_structure
from ._path import Path, parse_path
from ._reference import FieldDef, SegmentDef, field_definition, long_name, segment_definition
from ._segment import Field, Repetition, Segment
from ._validate import Problem, Severity, ValidationReport, validate

__all__ = [
    "DEFAULT_ENCODING",
    "ERROR_CODES",
    "MESSAGE_KINDS",
    "Encoding",
    "ErrorDetail",
    "Field",
    "FieldDef",
    "HL7DateTime",
    "Message",
    "Path",
    "Precision",
    "Problem",
    "Repetition",
    "Segment",
    "SegmentDef",
    "Severity",
    "ValidationReport",
    "build_ack",
    "escape",
    "field_definition",
    "format_datetime",
    "generate",
    "generate_many",
    "long_name",
    "new_control_id",
    "new_message",
    "parse",
    "parse_batch",
    "parse_datetime",
    "parse_path",
    "parse_version",
    "peek_control_id",
    "python_codec",
    "segment_definition",
    "split_messages",
    "standard_structure",
    "unescape",
    "validate",
]
