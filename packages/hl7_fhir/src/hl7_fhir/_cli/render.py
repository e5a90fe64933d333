"""Messages shown to a person (a tree with field names) or to a program (JSON)."""

from __future__ import annotations

import json
from typing import Any

from hl7_fhir.v2 import Message, Segment, unescape
from hl7_fhir.v2._reference import ComponentDef, SegmentDef, segment_definition

__all__ = ["dump_json", "message_json", "message_tree"]

_SHORTEN_AT = 200


def _show(text: str, full: bool) -> str:
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    if not full and len(text) > _SHORTEN_AT:
        return f"{text[: _SHORTEN_AT - 40]}... ({len(text)} characters)"
    return text


def _label(prefix: str, name: str) -> str:
    return f"{prefix} {name}" if name else prefix


def message_tree(message: Message, *, index: int | None = None, full: bool = False) -> str:
    """The message as indented lines: segments, then fields with their long names,
    then components of composite values (only those that are valued).

    >>> from hl7_fhir.v2 import parse
    >>> msg = parse("MSH|^~\\\\&|A|B|||20250101||ADT^A08|1|P|2.5\\rPID|1||P1||Doe^John")
    >>> print(message_tree(msg).splitlines()[-3:])
    ['  PID-5 Patient Name: Doe^John', '    PID-5.1 Family Name: Doe', '    PID-5.2 Given Name: John']
    """
    version = message.version
    head = f"{message.header.get(9)} {message.control_id or '(no control id)'}"
    head += f" v{version or '?'} ({len(message)} segments)"
    lines = [f"Message {index}: {head}" if index is not None else head]
    seen: dict[str, int] = {}
    for segment in message:
        occurrence = seen[segment.name] = seen.get(segment.name, 0) + 1
        name = segment.name if occurrence == 1 else f"{segment.name}[{occurrence}]"
        lines.append(name)
        definition = segment_definition(segment.name, version) if segment.name[:1] != "Z" else None
        lines.extend(_segment_lines(message, segment, definition, full))
    return "\n".join(lines)


def _segment_lines(
    message: Message, segment: Segment, definition: SegmentDef | None, full: bool
) -> list[str]:
    enc, charset = message.encoding, message.charset
    lines: list[str] = []
    for number in range(1, len(segment) + 1):
        raw = segment.field_text(number)
        if not raw:
            continue
        field = definition.field(number) if definition else None
        label = _label(f"{segment.name}-{number}", field.long_name if field else "")
        if segment.name == "MSH" and number <= 2:
            lines.append(f"  {label}: {raw}")
            continue
        repetitions = raw.split(enc.repetition)
        components = field.components if field else ()
        for rep_number, repetition in enumerate(repetitions, start=1):
            if not repetition:
                continue
            rep_label = label
            if len(repetitions) > 1:
                rep_label = _label(
                    f"{segment.name}-{number}[{rep_number}]", field.long_name if field else ""
                )
            leaf = enc.component not in repetition and enc.subcomponent not in repetition
            value = unescape(repetition, enc, charset) if leaf else repetition
            lines.append(f"  {rep_label}: {_show(value, full)}")
            if not leaf:
                prefix = rep_label.split(" ", 1)[0]
                lines.extend(_component_lines(message, prefix, repetition, components, full))
    return lines


def _component_lines(
    message: Message,
    prefix: str,
    text: str,
    components: tuple[ComponentDef, ...],
    full: bool,
    depth: int = 1,
) -> list[str]:
    enc, charset = message.encoding, message.charset
    separator = enc.component if depth == 1 else enc.subcomponent
    lines: list[str] = []
    for number, part in enumerate(text.split(separator), start=1):
        if not part:
            continue
        definition = components[number - 1] if number <= len(components) else None
        label = _label(f"{prefix}.{number}", definition.long_name if definition else "")
        nested = depth == 1 and enc.subcomponent in part
        value = part if nested else unescape(part, enc, charset)
        lines.append(f"{'  ' * (depth + 1)}{label}: {_show(value, full)}")
        if nested:
            subs = definition.components if definition else ()
            lines.extend(
                _component_lines(message, f"{prefix}.{number}", part, subs, full, depth + 1)
            )
    return lines


def message_json(message: Message) -> dict[str, Any]:
    """The message as plain data: segments -> fields -> repetitions -> components.

    ``fields[0]`` is field 1. A field is a list of repetitions, a repetition a list of
    components; a component is its unescaped text, or a list of subcomponents when it
    has any. MSH-1 and MSH-2 are kept as written.

    >>> from hl7_fhir.v2 import parse
    >>> data = message_json(parse("MSH|^~\\\\&|A\\rPID|1||P1^^^H&1.2&ISO~P2"))
    >>> data["segments"][1]["fields"][2]
    [['P1', '', '', ['H', '1.2', 'ISO']], ['P2']]
    """
    enc, charset = message.encoding, message.charset
    segments: list[dict[str, Any]] = []
    for segment in message:
        fields: list[Any] = []
        for number in range(1, len(segment) + 1):
            raw = segment.field_text(number)
            if segment.name == "MSH" and number <= 2:
                fields.append([[raw]])
                continue
            if not raw:
                fields.append([])
                continue
            repetitions: list[Any] = []
            for repetition in raw.split(enc.repetition):
                components: list[Any] = []
                for component in repetition.split(enc.component):
                    if enc.subcomponent in component:
                        components.append(
                            [unescape(s, enc, charset) for s in component.split(enc.subcomponent)]
                        )
                    else:
                        components.append(unescape(component, enc, charset))
                repetitions.append(components)
            fields.append(repetitions)
        segments.append({"name": segment.name, "fields": fields})
    return {
        "message_type": message.header.get(9),
        "control_id": message.control_id,
        "version": message.version,
        "segments": segments,
    }


def dump_json(messages: list[dict[str, Any]]) -> str:
    """A JSON list of :func:`message_json` results, one segment per line."""
    blocks = []
    for data in messages:
        head = ", ".join(
            f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
            for k, v in data.items()
            if k != "segments"
        )
        segments = ",\n".join(
            "      " + json.dumps(s, ensure_ascii=False) for s in data["segments"]
        )
        blocks.append(f'  {{{head}, "segments": [\n{segments}\n  ]}}')
    return "[\n" + ",\n".join(blocks) + "\n]"
