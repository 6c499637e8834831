"""Type checks of settings read from files (TOML, JSON) against the annotations of their dataclass, made
before the settings are used: ``hidden = "16"`` or ``epochs = "many"`` is an error naming the key, not a
[1, 6] network or a TypeError deep inside a run."""

from __future__ import annotations

import dataclasses

# annotation names (as ``from __future__ import annotations`` leaves them) -> accepted Python types
_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "list": (list, tuple),
          "dict": (dict,), "None": (type(None),)}


def accepted(annotation: str) -> tuple | None:
    """The Python types a field annotated ``annotation`` (``"int"``, ``"float | None"``, ``"int | str"``)
    accepts, or None for an annotation not checked here."""
    types: tuple = ()
    for name in (part.strip() for part in str(annotation).split("|")):
        if name not in _TYPES:
            return None
        types += _TYPES[name]
    return types


def type_error(name: str, value, annotation: str) -> str | None:
    """Why ``value`` cannot be the setting ``name`` annotated ``annotation``, or None if it can. A bool is
    not a number (TOML's ``true`` where a count belongs)."""
    allowed = accepted(annotation)
    if allowed is None:
        return None
    if isinstance(value, bool) and bool not in allowed:
        return f"{name} must be {annotation}, got {value!r}"
    if not isinstance(value, allowed):
        return f"{name} must be {annotation}, got {value!r} ({type(value).__name__})"
    return None


def check_types(cls, values: dict, where: str = "") -> None:
    """Raise ValueError naming the first key of ``values`` whose value does not have the type of the field
    of dataclass ``cls`` it sets (``where``, e.g. ``"[training] "``, prefixes the message)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key in fields:
            message = type_error(key, value, fields[key].type)
            if message:
                raise ValueError(where + message)


def check_instance_types(settings, where: str = "") -> None:
    """:func:`check_types` on the fields of a dataclass instance."""
    check_types(type(settings), {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}, where)


def check_items(name: str, values, kind: type, where: str = "") -> None:
    """Raise ValueError unless every item of the list ``values`` (setting ``name``) is a ``kind``."""
    for item in values:
        if not isinstance(item, kind) or (isinstance(item, bool) and kind is not bool):
            raise ValueError(f"{where}{name} must be a list of {kind.__name__}, got {list(values)!r}")
