"""Resource content -> the rows of the five search index tables.

The FHIRPath in `search_params` is the single source of truth. Each expression is
compiled once per resource type: the simple shapes the R4 table uses (dotted paths, `|`,
`as Type` / `as(Type)` / `ofType(Type)` on choice elements, `where(field='literal')`) are
compiled into a direct walk over the JSON with every element's R4 type looked up in
fhirpathpy's R4 model, because fhirpathpy takes ~15 µs per evaluation and a write indexes
every parameter; anything else is evaluated by fhirpathpy itself. Both give (FHIR type,
value) pairs, so the same converters turn either into rows (a test checks both agree on
the example corpus).

`(X as T)` is read as `X.ofType(T)` (what R5 made it) since R4 applies it to
collections, e.g. `Observation.component.value as Quantity`.

`where(resolve() is T)` cannot be evaluated without reading other resources: it is
dropped from the expression and the parameter's `targets` (which the table sets to T)
keep only references whose type is T. References whose type cannot be read (`urn:uuid:`,
foreign URLs) are kept by `url` alone; `#contained` references are skipped.

The value semantics (`normalise`, `date_range`, `number_range`) are public so the query
side parses search values exactly the way values were indexed.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from ehr_api.fhir_store.search_params import SearchParam, params_for

__all__ = [
    "BY_IDENTIFIER",
    "FAR_FUTURE",
    "FAR_PAST",
    "MAX_TEXT",
    "OF_TYPE",
    "TEXT",
    "IndexRows",
    "compile_expression",
    "date_range",
    "index",
    "normalise",
    "number_range",
    "values",
]

#: Token rows for `:of-type` searches live under the parameter's name plus this suffix
#: (`identifier:of-type`), so they never answer a plain `identifier` search: system is
#: the Identifier.type coding's system, code "<type code>|<identifier value>".
OF_TYPE = ":of-type"
#: ... and rows for `:identifier` on a reference parameter (`subject:identifier`): the
#: Reference.identifier a logical reference carries, as an identifier token.
BY_IDENTIFIER = ":identifier"
#: ... and string rows for `:text` on a token parameter (`code:text`): CodeableConcept.text
#: and Coding.display, normalised as string parameters are.
TEXT = ":text"

FAR_PAST = datetime(1, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
#: Every indexed text is cut to this many characters (the columns' width).
MAX_TEXT = 255

_MODEL: dict[str, Any] = models["r4"]
_PATH_TYPES: Mapping[str, str] = _MODEL["path2Type"]
_CHOICES: Mapping[str, list[str]] = _MODEL["choiceTypePaths"]
_PRIMITIVES = {
    name.lower(): name
    for name in (
        "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id",
        "instant", "integer", "markdown", "oid", "positiveInt", "string", "time", "unsignedInt",
        "uri", "url", "uuid", "xhtml",
    )
}  # fmt: skip
_PRIMITIVE_NAMES = frozenset(_PRIMITIVES.values())
_RESOURCE_TYPES = frozenset(
    name
    for name, parent in _MODEL["type2Parent"].items()
    if parent in ("DomainResource", "Resource")
)
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_RESOLVE = re.compile(r"\.where\(resolve\(\) is [A-Za-z]+\)")
# `(X as T)` on a collection: R4 expressions use it where fhirpathpy wants a singleton.
_AS = re.compile(r"\(\s*([^()]+?)\s+as\s+([A-Za-z]+)\s*\)")
_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?"
)

Typed = tuple[str, Any]  # (FHIR type name, JSON value)
Evaluator = Callable[[Mapping[str, Any]], list[Typed]]


@dataclass(slots=True)
class IndexRows:
    """The index rows of one resource, table by table, without the resource's key.

    Each list is already free of duplicate primary keys.
    """

    tokens: list[tuple[str, str, str]] = field(default_factory=list)  # param, system, code
    strings: list[tuple[str, str, str]] = field(default_factory=list)  # param, value, exact
    dates: list[tuple[str, datetime, datetime]] = field(default_factory=list)  # param, low, high
    numbers: list[tuple[str, float, float, str, str]] = field(default_factory=list)
    references: list[tuple[str, str, str, str]] = field(
        default_factory=list
    )  # param, type, id, url

    def __len__(self) -> int:
        tables: tuple[list[Any], ...] = (
            self.tokens,
            self.strings,
            self.dates,
            self.numbers,
            self.references,
        )
        return sum(len(rows) for rows in tables)


# -- value semantics ------------------------------------------------------------------


def normalise(text: str) -> str:
    """The string index's match form: case-folded, accents stripped, spaces collapsed, cut.

    >>> normalise("  Ćmielów   SMITH ")
    'cmielow smith'
    """
    if text.isascii():
        folded = text.lower()
    else:
        decomposed = unicodedata.normalize("NFKD", text.casefold())
        folded = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(folded.split())[:MAX_TEXT]


def date_range(text: str) -> tuple[datetime, datetime] | None:
    """The UTC instants [low, high) a FHIR date/dateTime/instant covers, by its precision.

    A value without a zone is read as UTC; None when `text` is not a FHIR date.

    >>> date_range("1974-12")[1]
    datetime.datetime(1975, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    match = _DATE.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        tz = UTC if zone in (None, "Z") else _zone(zone)
        low = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "")[:6].ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError:
        return None
    if fraction:
        step = timedelta(microseconds=10 ** (6 - min(len(fraction), 6)))
    elif second or minute:
        step = timedelta(seconds=1 if second else 60)
    elif day or month:
        step = timedelta(days=1 if day else calendar.monthrange(low.year, low.month)[1])
    else:
        step = timedelta(days=366 if calendar.isleap(low.year) else 365)
    try:
        high = low + step
    except OverflowError:
        high = FAR_FUTURE
    return _utc(low, FAR_PAST), _utc(high, FAR_FUTURE)


def _zone(text: str) -> timezone:
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _utc(moment: datetime, limit: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return limit


def number_range(value: object) -> tuple[float, float] | None:
    """[low, high] (inclusive) a number covers by its significant digits: 5.4 -> 5.35..5.45.

    Accepts JSON numbers and their text; None for anything else.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return None
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    exponent = number.as_tuple().exponent
    half = Decimal(5).scaleb(int(exponent) - 1)
    return float(number - half), float(number + half)


# -- compiling expressions ------------------------------------------------------------


def _canonical_type(name: str | None, value: Any) -> str:
    """The FHIR type name in one spelling whatever produced it (model, choice key, engine)."""
    if name:
        name = name.removeprefix("System.")
        return _PRIMITIVES.get(name.lower(), name)
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float | Decimal):
        return "decimal"
    return ""


_STEP = re.compile(
    r"\.(?:where\((?P<field>[a-z][A-Za-z0-9]*)\s*=\s*'(?P<literal>[^'\\]*)'\)"
    r"|(?:as|ofType)\((?P<cast>[A-Za-z]+)\)"
    r"|(?P<name>[a-z][A-Za-z0-9]*)(?![A-Za-z0-9(]))"
)
_ALTERNATIVE = re.compile(r"\(\s*(?P<inner>[^()]+?)\s+as\s+(?P<type>[A-Za-z]+)\s*\)(?P<rest>.*)")


class _Unsupported(Exception):
    """The expression is outside the subset the direct walk handles."""


def _steps(root: str, text: str) -> list[tuple[str, str, str]]:
    """`Type.a.where(f='x').b` -> [('child','a',''), ('where','f','x'), ('child','b','')]."""
    text = text.strip()
    cast = ""
    paren = _ALTERNATIVE.fullmatch(text)
    if paren:
        text, cast, rest = paren["inner"].strip(), paren["type"], paren["rest"].strip()
    else:
        rest = ""
    if not text.startswith(root):
        raise _Unsupported(text)
    steps = _parse_steps(text[len(root) :])
    if cast:
        steps.append(("cast", cast, ""))
    return steps + _parse_steps(rest)


def _parse_steps(text: str) -> list[tuple[str, str, str]]:
    steps: list[tuple[str, str, str]] = []
    position = 0
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None:
            raise _Unsupported(text)
        if match["name"]:
            steps.append(("child", match["name"], ""))
        elif match["field"]:
            steps.append(("where", match["field"], match["literal"]))
        else:
            steps.append(("cast", match["cast"], ""))
        position = match.end()
    return steps


def _walker(root: str, steps: list[tuple[str, str, str]]) -> Evaluator:
    """A direct walk for `steps` from a resource of type `root`, types from the R4 model."""
    # Each stage: ('child', [(json key, FHIR type)]) or ('where', (field, literal)).
    plan: list[tuple[str, Any]] = []
    contexts: list[tuple[str, str]] = [(root, root)]  # (model path, FHIR type) per candidate
    for index, (kind, name, literal) in enumerate(steps):
        if kind == "where":
            plan.append(("where", (name, literal)))
            continue
        if kind == "cast":
            if plan and plan[-1][0] == "child":
                wanted = _canonical_type(name, None)
                keep = [pair for pair in plan[-1][1] if pair[1] == wanted]
                plan[-1] = ("child", keep)
                contexts = [ctx for ctx in contexts if ctx[1] == wanted]
                continue
            raise _Unsupported(name)
        candidates: list[tuple[str, str]] = []
        next_contexts: list[tuple[str, str]] = []
        for path, _ in contexts:
            full = f"{path}.{name}"
            if full in _CHOICES:
                choices = _CHOICES[full]
                if index + 1 < len(steps) and steps[index + 1][0] == "cast":
                    cast = steps[index + 1][1].lower()
                    choices = [choice for choice in choices if choice.lower() == cast]
                for choice in choices:
                    type_ = _canonical_type(choice, None)
                    candidates.append((name + choice[0].upper() + choice[1:], type_))
                    next_contexts.append((type_, type_))
            elif full in _PATH_TYPES:
                type_ = _canonical_type(_PATH_TYPES[full], None)
                candidates.append((name, type_))
                complex_ = type_ not in _PRIMITIVE_NAMES and type_ != "BackboneElement"
                next_contexts.append((type_ if complex_ else full, type_))
            elif any(key.startswith(full + ".") for key in _PATH_TYPES):
                candidates.append((name, "BackboneElement"))
                next_contexts.append((full, "BackboneElement"))
            else:
                raise _Unsupported(full)
        plan.append(("child", candidates))
        contexts = next_contexts

    def walk(content: Mapping[str, Any]) -> list[Typed]:
        items: list[Typed] = [(root, content)]
        for kind, detail in plan:
            if kind == "where":
                name, literal = detail
                items = [
                    item
                    for item in items
                    if isinstance(item[1], dict) and item[1].get(name) == literal
                ]
                continue
            found: list[Typed] = []
            for _, value in items:
                if not isinstance(value, dict):
                    continue
                for key, type_ in detail:
                    child = value.get(key)
                    if child is None:
                        continue
                    if isinstance(child, list):
                        found.extend((type_, each) for each in child if each is not None)
                    else:
                        found.append((type_, child))
            items = found
        return items

    return walk


def _engine(expression: str) -> Evaluator:
    """fhirpathpy for what the direct walk does not cover, typed by its R4 model.

    A top-level union is evaluated part by part: fhirpathpy drops the element types of
    `a | b` results, and the index dedupes its rows anyway.
    """
    compiled = [
        fhirpathpy.compile(part, _MODEL, options={"returnRawData": True})
        for part in _split_union(expression)
    ]

    def evaluate(content: Mapping[str, Any]) -> list[Typed]:
        found: list[Typed] = []
        for part in compiled:
            for node in part(content, None):
                if isinstance(node, ResourceNode):
                    found.append((_canonical_type(node.path, node.data), node.data))
                else:
                    found.append((_canonical_type(None, node), node))
        return found

    return evaluate


def compile_expression(resource_type: str, expression: str, *, fast: bool = True) -> Evaluator:
    """An evaluator of one table expression on resources of `resource_type`.

    `fast=False` forces fhirpathpy (the tests compare both on real resources).
    """
    expression = _RESOLVE.sub("", expression)
    if fast:
        try:
            walks = [
                _walker(resource_type, _steps(resource_type, part))
                for part in _split_union(expression)
            ]
        except _Unsupported:
            pass
        else:
            if len(walks) == 1:
                return walks[0]
            return lambda content: [pair for walk in walks for pair in walk(content)]
    return _engine(_AS.sub(r"\1.ofType(\2)", expression))


def _split_union(expression: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for position, char in enumerate(expression):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "|" and depth == 0:
            parts.append(expression[start:position])
            start = position + 1
    parts.append(expression[start:])
    return [part.strip() for part in parts if part.strip()]


@cache
def _compiled(resource_type: str) -> tuple[tuple[SearchParam, Evaluator], ...]:
    return tuple(
        (param, compile_expression(resource_type, param.expression))
        for param in params_for(resource_type).values()
        if not param.name.startswith("_")
    )


def values(resource_type: str, content: Mapping[str, Any], name: str) -> list[Typed]:
    """The (FHIR type, value) pairs parameter `name` selects in `content` (tests, debugging)."""
    for param, evaluate in _compiled(resource_type):
        if param.name == name:
            return evaluate(content)
    raise KeyError(name)


# -- values -> rows ---------------------------------------------------------------------


def _cut(text: str) -> str:
    return text[:MAX_TEXT]


def _primitive(type_: str) -> bool:
    """A JSON string is a value only where the model says a primitive ('' = untyped)."""
    return not type_ or type_ in _PRIMITIVE_NAMES


def _tokens(type_: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        if type_ == "CodeableConcept":
            for coding in value.get("coding") or ():
                yield from _tokens("Coding", coding)
        elif type_ == "Coding" and isinstance(value.get("code"), str):
            yield _cut(value.get("system") or ""), _cut(value["code"])
        elif type_ == "Identifier" and isinstance(value.get("value"), str):
            yield _cut(value.get("system") or ""), _cut(value["value"])
        elif type_ == "ContactPoint" and isinstance(value.get("value"), str):
            yield "", _cut(value["value"])
    elif isinstance(value, bool):
        yield "", "true" if value else "false"
    elif isinstance(value, str) and value and _primitive(type_):
        yield "", _cut(value)


def _identifier_types(value: Any) -> Iterator[tuple[str, str]]:
    """`identifier:of-type` rows: (type coding's system, "<type code>|<value>") per coding."""
    if not isinstance(value, dict) or not isinstance(value.get("value"), str):
        return
    kind = value.get("type")
    for coding in (kind.get("coding") or ()) if isinstance(kind, dict) else ():
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            yield _cut(coding.get("system") or ""), _cut(f"{coding['code']}|{value['value']}")


def _code_texts(type_: str, value: Any) -> Iterator[str]:
    """What people read of a code: CodeableConcept.text and each Coding.display."""
    if not isinstance(value, dict):
        return
    if type_ == "CodeableConcept":
        texts = [value.get("text")]
        texts += [
            coding.get("display")
            for coding in value.get("coding") or ()
            if isinstance(coding, dict)
        ]
    elif type_ == "Coding":
        texts = [value.get("display")]
    else:
        return
    yield from (text for text in texts if isinstance(text, str) and text.strip())


def _texts(type_: str, value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if _primitive(type_):
            yield value
    elif not isinstance(value, dict):
        return
    elif type_ == "HumanName":
        parts = [
            *(value.get("prefix") or ()),
            *(value.get("given") or ()),
            *([value["family"]] if value.get("family") else []),
            *(value.get("suffix") or ()),
        ]
        yield from parts
        if value.get("text"):
            yield value["text"]
        if len(parts) > 1:
            yield " ".join(part for part in parts if isinstance(part, str))
    elif type_ == "Address":
        yield from value.get("line") or ()
        for key in ("city", "district", "state", "postalCode", "country", "text"):
            if value.get(key):
                yield value[key]


def _dates(type_: str, value: Any) -> Iterator[tuple[datetime, datetime]]:
    if isinstance(value, str) and _primitive(type_):
        found = date_range(value)
        if found:
            yield found
    elif isinstance(value, dict) and type_ == "Period":
        start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
        end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
        if start or end:
            yield (start[0] if start else FAR_PAST), (end[1] if end else FAR_FUTURE)
    elif isinstance(value, dict) and type_ == "Timing":
        for event in value.get("event") or ():
            yield from _dates("dateTime", event)
        bounds = (value.get("repeat") or {}).get("boundsPeriod")
        if bounds:
            yield from _dates("Period", bounds)


_QUANTITIES = frozenset(
    {"Quantity", "Age", "Count", "Distance", "Duration", "SimpleQuantity", "MoneyQuantity"}
)


def _numbers(kind: str, type_: str, value: Any) -> Iterator[tuple[float, float, str, str]]:
    if kind == "number":
        found = number_range(value)
        if found:
            yield found[0], found[1], "", ""
        return
    if not isinstance(value, dict):
        return
    found = number_range(value.get("value"))
    if found is None:
        return
    if type_ in _QUANTITIES:
        code = value.get("code") or value.get("unit") or ""
        yield found[0], found[1], _cut(value.get("system") or ""), _cut(code)
    elif type_ == "Money":
        yield found[0], found[1], "urn:iso:std:iso:4217", _cut(value.get("currency") or "")


def _reference(text: str) -> tuple[str, str] | None:
    """(target type, target id) of a reference text; ('', '') when unreadable; None = skip."""
    if not text or text.startswith("#"):
        return None
    if text.startswith("urn:"):
        return "", ""
    parts = text.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2] in _RESOURCE_TYPES and _ID.fullmatch(parts[-1]):
        return parts[-2], parts[-1]
    return "", ""


def _references(type_: str, value: Any, targets: tuple[str, ...]) -> Iterator[tuple[str, str, str]]:
    text = value.get("reference") if isinstance(value, dict) else value
    if not isinstance(text, str) or (text is value and not _primitive(type_)):
        return
    found = _reference(text)
    if found is None:
        return
    target_type, target_id = found
    if target_type and targets and target_type not in targets:
        return
    if "://" in text:
        # Absolute: possibly another server's Patient/1, never taken for our own (search
        # maps a URL under our base to Type/id; others match on `url` as written).
        target_type = target_id = ""
    yield target_type, target_id, _cut(text)


def index(resource_type: str, content: Mapping[str, Any]) -> IndexRows:
    """Every index row of `content` (a resource of `resource_type`), deduplicated.

    Never raises on odd content: a value that does not convert is simply not indexed.
    """
    tokens: dict[tuple[str, str, str], None] = {}
    strings: dict[tuple[str, str], str] = {}
    dates: dict[tuple[str, datetime, datetime], None] = {}
    numbers: dict[tuple[str, float, float, str, str], None] = {}
    references: dict[tuple[str, str, str, str], None] = {}
    for param, evaluate in _compiled(resource_type):
        name, kind = param.name, param.type
        for type_, value in evaluate(content):
            if kind in ("token", "uri"):
                for system, code in _tokens(type_, value):
                    tokens[name, system, code] = None
                if type_ == "Identifier":
                    for system, code in _identifier_types(value):
                        tokens[name + OF_TYPE, system, code] = None
                for text in _code_texts(type_, value):
                    strings.setdefault((name + TEXT, _cut(text)), normalise(text))
            elif kind == "string":
                for text in _texts(type_, value):
                    if isinstance(text, str) and text.strip():
                        strings.setdefault((name, _cut(text)), normalise(text))
            elif kind == "date":
                for low, high in _dates(type_, value):
                    dates[name, low, high] = None
            elif kind in ("number", "quantity"):
                for number in _numbers(kind, type_, value):
                    numbers[(name, *number)] = None
            elif kind == "reference":
                for reference in _references(type_, value, param.targets):
                    references[(name, *reference)] = None
                if isinstance(value, dict):
                    for system, code in _tokens("Identifier", value.get("identifier")):
                        tokens[name + BY_IDENTIFIER, system, code] = None
    return IndexRows(
        tokens=[*tokens],
        strings=[(name, value, exact) for (name, exact), value in strings.items()],
        dates=[*dates],
        numbers=[*numbers],
        references=[*references],
    )
