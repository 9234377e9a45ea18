"""A compiled decoder for telemetry batches, derived from the wire models in ``schemas``.

Validating a 50-reading batch with pydantic costs about 4-5 µs per reading, more
than everything else the ingest does per reading together. msgspec checks the same
types and bounds in C in well under 1 µs. The wire format stays defined once, in
:mod:`schemas`: this module *derives* msgspec structs from the pydantic models at
import, and refuses (``TypeError`` at import) any field type or constraint it cannot
mirror exactly, so a schema change that the fast path would get wrong fails the tests
instead of slipping through.

The fast decoder is a filter, never the authority. A payload it accepts is one the
pydantic models accept with the same values (``tests/cloud/ingest/test_decode.py``
checks this with hypothesis); a payload it refuses goes to :func:`schemas.decode_batch`,
which either accepts it (a form msgspec is stricter about) or raises the canonical
:class:`~schemas.WireError` that names the field and the value.
"""

from __future__ import annotations

import enum
import operator
import re
import types
from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
import msgspec
from pydantic import AfterValidator, AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from schemas import Batch
from schemas.wire import _to_utc

# Validators known not to reject anything the derived type accepts.
_HARMLESS_VALIDATORS = {_to_utc}  # normalises an aware datetime to UTC; rejects nothing
# annotated-types constraint -> the msgspec.Meta keyword (and attribute) of the same name
_BOUNDS: dict[type, str] = {
    at.Ge: "ge",
    at.Le: "le",
    at.Gt: "gt",
    at.Lt: "lt",
    at.MaxLen: "max_length",
    at.MinLen: "min_length",
}


def _meta(
    metadata: list[Any], where: str, pattern_sink: list[str] | None = None
) -> msgspec.Meta | None:
    kw: dict[str, Any] = {}
    for m in metadata:
        bound = _BOUNDS.get(type(m))
        if bound is not None:
            kw[bound] = getattr(m, bound)
        elif isinstance(m, AfterValidator) and m.func in _HARMLESS_VALIDATORS:
            continue
        elif type(m).__name__ == "_PydanticGeneralMetadata" and set(vars(m)) == {"pattern"}:
            if pattern_sink is None:
                kw["pattern"] = _python_pattern(m.pattern)  # type: ignore[attr-defined]
            else:
                pattern_sink.append(m.pattern)  # type: ignore[attr-defined]
        else:
            raise TypeError(f"{where}: cannot mirror constraint {m!r} in msgspec")
    return msgspec.Meta(**kw) if kw else None


def _python_pattern(pattern: str) -> str:
    # pydantic matches with Rust's regex, where `$` is the very end; Python's `$` also
    # matches before a final newline, which would let "id\n" through.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return pattern


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _annotated(tp: Any, meta: msgspec.Meta | None) -> Any:
    return Annotated[tp, meta] if meta is not None else tp


class _Deriver:
    def __init__(self) -> None:
        self.structs: dict[type[BaseModel], type[msgspec.Struct]] = {}
        # struct -> ((field, compiled pattern), ...) checked after decoding, see decode_fast
        self.deferred: dict[type[msgspec.Struct], tuple[tuple[str, re.Pattern[str]], ...]] = {}
        self.depth = 0
        self.list_items: set[type[msgspec.Struct]] = set()

    def type_of(self, tp: Any, metadata: list[Any], where: str) -> Any:
        meta = _meta(metadata, where)
        origin = get_origin(tp)
        if tp is AwareDatetime:
            tz = msgspec.Meta(tz=True)
            return Annotated[datetime, tz] if meta is None else Annotated[datetime, tz, meta]
        if tp in (str, int, float, bool) or (isinstance(tp, type) and issubclass(tp, enum.Enum)):
            return _annotated(tp, meta)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return _annotated(self.struct(tp), meta)
        if origin is Literal:
            return _annotated(tp, meta)
        if origin is list:
            (item,) = get_args(tp)
            self.depth += 1  # models inside lists: their id patterns are checked once per id
            try:
                item_type = self.type_of(item, [], f"{where}[]")
            finally:
                self.depth -= 1
            self.list_items.update(a for a in (item_type, *get_args(item_type)) if _is_struct(a))
            # list[item_type] built at runtime (a variable in a subscript is not a static type)
            return _annotated(types.GenericAlias(list, (item_type,)), meta)
        if origin is Annotated:
            inner, *extra = get_args(tp)
            infos = [e for e in extra if isinstance(e, FieldInfo)]
            plain = [e for e in extra if not isinstance(e, FieldInfo)]
            for info in infos:
                plain.extend(info.metadata)
            if any(i.discriminator for i in infos):
                return self.tagged_union(inner, next(i.discriminator for i in infos), where)
            return self.type_of(inner, plain + list(metadata), where)
        if origin is dict:
            key, value = get_args(tp)
            key_type = self.type_of(key, [], f"{where}{{}}")
            value_type = self.type_of(value, [], f"{where}[]")
            # dict[key_type, value_type] built at runtime (the subscript is not a static type)
            return _annotated(types.GenericAlias(dict, (key_type, value_type)), meta)
        if origin in (Union, types.UnionType):
            args = get_args(tp)
            if len(args) == 2 and type(None) in args:
                other = next(a for a in args if a is not type(None))
                return _annotated(self.type_of(other, [], where), meta) | None
            if meta is None and type(None) not in args:  # e.g. a bounded float | bool
                return Union[tuple(self.type_of(a, [], where) for a in args)]  # noqa: UP007
        raise TypeError(f"{where}: cannot mirror type {tp!r} in msgspec")

    def tagged_union(self, union: Any, tag_field: Any, where: str) -> Any:
        members = []
        for model in get_args(union):
            field = model.model_fields[tag_field]
            (tag,) = get_args(field.annotation)  # Literal["water_block"]
            members.append(self.struct(model, tag_field=tag_field, tag=tag))
        return Union[tuple(members)]  # noqa: UP007 - built from a runtime tuple

    def struct(
        self, model: type[BaseModel], *, tag_field: str | None = None, tag: str | None = None
    ) -> type[msgspec.Struct]:
        if model in self.structs:
            return self.structs[model]
        if model.model_config.get("extra") != "forbid":
            raise TypeError(f"{model.__name__}: only extra='forbid' models are mirrored")
        fields: list[tuple[Any, ...]] = []
        deferred: list[tuple[str, re.Pattern[str]]] = []
        for name, info in model.model_fields.items():
            if name == tag_field or info.alias not in (None, name):
                if name != tag_field:
                    raise TypeError(f"{model.__name__}.{name}: aliases are not mirrored")
                continue
            where = f"{model.__name__}.{name}"
            metadata = list(info.metadata)
            if self.depth and info.annotation is str:
                patterns: list[str] = []
                _meta(metadata, where, patterns)  # raises on what cannot be mirrored
                metadata = [m for m in metadata if not hasattr(m, "pattern")]
                deferred.extend((name, re.compile(_python_pattern(p))) for p in patterns)
            tp = self.type_of(info.annotation, metadata, where)
            if info.is_required():
                fields.append((name, tp))
            elif info.default_factory is not None:
                fields.append((name, tp, msgspec.field(default_factory=info.default_factory)))  # type: ignore[arg-type]
            else:
                fields.append((name, tp, info.default))
        # a class attribute, so r.kind reads as on the pydantic model
        namespace = {tag_field: tag} if tag_field else {}
        struct = msgspec.defstruct(
            model.__name__,
            fields,
            namespace=namespace,
            forbid_unknown_fields=True,
            tag_field=tag_field,
            tag=tag,
            frozen=True,
            kw_only=True,  # pydantic allows required fields after defaults
            gc=False,  # no cycles possible; keeps 10^5 structs out of the collector
            module=__name__,
        )
        self.structs[model] = struct
        if deferred:
            self.deferred[struct] = tuple(deferred)
        return struct


_deriver = _Deriver()
FastBatch: type[msgspec.Struct] = _deriver.struct(Batch)
_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(FastBatch)
_deferred = _deriver.deferred
# Ids that passed their pattern. msgspec runs a pattern through Python's re for every
# value (0.8 µs a reading); a city has a few thousand device ids, each checked once.
_checked: set[str] = set()
_CHECKED_MAX = 200_000
# msgspec rounds a time's digits beyond the microsecond, pydantic truncates them (found by
# the equivalence test: .123456789 became 123457 µs, and .9999995 could change the ms).
# Such times are rare; they take the pydantic path. Floats never end in a quote.
_SUB_MICROSECOND = re.compile(rb'\.\d{7,}(?:[Zz]|[+-]\d\d:?\d\d)?"')


def _single_id_field() -> tuple[operator.attrgetter[str], re.Pattern[str]] | None:
    checks = set(_deferred.values())
    if len(checks) != 1 or _deriver.list_items - set(_deferred):
        return None
    ((name, pattern),) = checks.pop()
    return operator.attrgetter(name), pattern


_one_id = _single_id_field()


def decode_fast(payload: bytes) -> Any | None:
    """The batch as a :data:`FastBatch` struct, or None when msgspec refuses it.

    None means "ask :func:`schemas.decode_batch`", not "invalid": msgspec is stricter
    about a few forms than pydantic, and only pydantic's error names the field.
    """
    if _SUB_MICROSECOND.search(payload):
        return None
    try:
        batch = _decoder.decode(payload)
    except (msgspec.DecodeError, ValueError):  # bad UTF-8 in a string: UnicodeDecodeError
        return None
    if _one_id is not None:  # every list item has the same one id field: set arithmetic
        get, pattern = _one_id
        new = set(map(get, batch.readings))
        new.update(map(get, batch.statuses))
        new -= _checked
        pairs = [(value, pattern) for value in new]
    else:
        pairs = [
            (getattr(item, name), pattern)
            for items in (batch.readings, batch.statuses)
            for item in items
            for name, pattern in _deferred.get(type(item), ())
        ]
    for value, pattern in pairs:
        if value not in _checked:
            if pattern.search(value) is None:
                return None
            if len(_checked) >= _CHECKED_MAX:
                _checked.clear()
            _checked.add(value)
    return batch


def mirrored() -> dict[type[BaseModel], type[msgspec.Struct]]:
    """Every pydantic model mirrored, with its struct (for tests and docs)."""
    return dict(_deriver.structs)


__all__ = ["FastBatch", "decode_fast", "mirrored"]
