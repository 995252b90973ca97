"""`section_from_dict`: the one converter from a (JSON or ConfigDict) mapping to a frozen
section, nested sections included; and `known_keys`, which splits a saved mapping into what
today's section has and what it no longer has."""

import dataclasses
import types
import typing
from typing import Any


def section_from_dict(cls: type, values: Any, where: str) -> Any:
    """The frozen dataclass `cls` from a mapping (a ConfigDict, or JSON's dict): unknown keys
    raise a ValueError naming them; nested dataclass fields are built the same way; lists (as
    JSON stores tuples) become tuples. Missing keys take their defaults."""
    if hasattr(values, "to_dict"):
        values = values.to_dict()
    known = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        names = ", ".join(f"{where}.{key}" for key in unknown)
        raise ValueError(f"No such setting {names}; {where} has {sorted(known)}.")
    hints = typing.get_type_hints(cls)
    converted = {}
    for key, value in values.items():
        kind = hints[key]
        if dataclasses.is_dataclass(kind) and isinstance(value, dict):
            value = section_from_dict(kind, value, f"{where}.{key}")
        elif isinstance(value, list):
            value = tuple(value)
        elif _is_tuple(kind) and isinstance(value, str):
            raise ValueError(f"{where}.{key} must be a tuple, got the string {value!r}.")
        converted[key] = value
    return cls(**converted)


def _is_tuple(kind) -> bool:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return any(_is_tuple(arg) for arg in typing.get_args(kind))
    return kind is tuple or origin is tuple


def known_keys(cls: type, values: dict, where: str) -> tuple[dict, list[str]]:
    """(the part of `values` that `cls` has, nested sections alike; the dotted names of the
    keys it does not have). A dict-typed field (an open section) is kept whole."""
    known = {field.name for field in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kept, dropped = {}, []
    for key, value in values.items():
        if key not in known:
            dropped.append(f"{where}.{key}")
        elif dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            kept[key], inner = known_keys(hints[key], value, f"{where}.{key}")
            dropped += inner
        else:
            kept[key] = value
    return kept, dropped
