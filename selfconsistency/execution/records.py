"""Typed result records: one dataclass per kind of record, written as JSON and read back checked.

A record class is a dataclass that subclasses :class:`Record`. Its fields and their type hints are its
schema: :meth:`Record.from_dict` checks a JSON object against them (a missing field, a field of another
type, a version this code does not know) and raises :class:`RecordProblem` naming the field, instead of
a ``KeyError`` somewhere in a table; :meth:`Record.to_dict` gives the JSON object, with ``version``.

Files written before records had a version (no ``version`` field) are version 0 and still load: a class
upgrades them in :meth:`Record.upgrade`. Fields a record does not declare are kept (``extra``) and
written back, so a file made by a newer minor version survives a rewrite.

>>> from dataclasses import dataclass
>>> @dataclass
... class Point(Record):
...     x: float
...     label: str | None = None
>>> Point.from_dict({"x": 1}).x, Point(2.0).to_dict()
(1, {'x': 2.0, 'label': None, 'version': 1})
"""

from __future__ import annotations

import types
import typing
import warnings
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

__all__ = ["Record", "RecordProblem", "check_value", "checked_fields", "config_check"]


class RecordProblem(ValueError):
    """A JSON object that is not a whole record of its kind; the message names the field."""


# list items checked in one pass (JSON numbers are int or float; a bool is not a number)
_NUMBERS = {float: (int, float), float | None: (int, float, type(None)), int: (int,), int | None: (int, type(None))}


def _type_name(kind) -> str:
    return getattr(kind, "__name__", str(kind))


def check_value(value, kind, name: str):
    """``value`` checked against the type hint ``kind`` (and converted where the hint is a record or a class
    with ``from_dict``); :class:`RecordProblem` naming ``name`` otherwise. Handles ``int``, ``float`` (an int
    is accepted), ``str``, ``bool``, ``X | None``, ``list[X]``, ``tuple[X, ...]``, ``dict``, ``Any``."""
    origin = typing.get_origin(kind)
    if kind is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _check_union(value, typing.get_args(kind), name)
    if origin in (list, tuple) or kind in (list, tuple):
        return _check_sequence(value, kind, origin or kind, name)
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise RecordProblem(f"field {name!r} is a {type(value).__name__}, not an object")
        return value
    if isinstance(kind, type) and hasattr(kind, "from_dict"):
        return _check_nested(value, kind, name)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecordProblem(f"field {name!r} is a {type(value).__name__}, not a number")
        return value
    if kind in (int, str, bool):
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise RecordProblem(f"field {name!r} is a {type(value).__name__}, not a {_type_name(kind)}")
        return value
    raise TypeError(f"check_value: unsupported type hint {kind!r} for field {name!r}")  # a bug in a record class


def _check_union(value, options: tuple, name: str):
    if value is None and type(None) in options:
        return None
    problems = []
    for option in options:
        if option is type(None):
            continue
        try:
            return check_value(value, option, name)
        except RecordProblem as err:
            problems.append(str(err))
    raise RecordProblem(problems[0] if len(problems) == 1 else f"field {name!r} is a {type(value).__name__}")


def _check_sequence(value, kind, origin, name: str):
    if not isinstance(value, (list, tuple)):
        raise RecordProblem(f"field {name!r} is a {type(value).__name__}, not a list")
    args = typing.get_args(kind)
    item = args[0] if args and (origin is list or (len(args) == 2 and args[1] is Ellipsis)) else Any
    if item in _NUMBERS:  # long per-step lists: one pass, no recursion
        allowed = _NUMBERS[item]
        bad = next((i for i, v in enumerate(value) if type(v) not in allowed), None)
        if bad is not None:
            raise RecordProblem(f"field {name!r} holds {value[bad]!r} at {bad}, not a number")
        checked = value
    elif item is Any:
        checked = value
    else:
        checked = [check_value(v, item, f"{name}[{i}]") for i, v in enumerate(value)]
    return tuple(checked) if origin is tuple else list(checked)


def _check_nested(value, kind, name: str):
    if isinstance(value, kind):
        return value
    if not isinstance(value, dict):
        raise RecordProblem(f"field {name!r} is a {type(value).__name__}, not an object")
    try:
        return kind.from_dict(value)
    except RecordProblem as err:
        raise RecordProblem(f"{name}: {err}") from None
    except (TypeError, ValueError) as err:
        raise RecordProblem(f"field {name!r} is not a {_type_name(kind)} ({err})") from None


def checked_fields(cls, data: dict) -> tuple[dict, dict]:
    """``(values, extra)``: the fields of the dataclass ``cls`` in ``data``, each checked against its type hint
    (a missing field with a default takes it; one without is a :class:`RecordProblem`), and the rest."""
    hints = typing.get_type_hints(cls)
    values, known = {}, {"extra"}
    for f in fields(cls):
        if f.name == "extra":
            continue
        known.add(f.name)
        if f.name not in data:
            if f.default is not MISSING or f.default_factory is not MISSING:
                continue  # a field added after some files were written: its default
            raise RecordProblem(f"field {f.name!r} is missing")
        values[f.name] = check_value(data[f.name], hints[f.name], f.name)
    return values, {k: v for k, v in data.items() if k not in known}


def _plain(value):
    """``value`` as JSON data: records and configs through their ``to_dict``, tuples as lists."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass
class Record:
    """The base of a typed record (subclass it as a dataclass; see the module docstring).

    ``VERSION``: the version this code writes. ``extra``: the fields of a file that the class does not
    declare, kept as they were.
    """

    VERSION: ClassVar[int] = 1
    OMIT_NONE: ClassVar[tuple[str, ...]] = ()  # fields left out of the JSON when None (absent in old files)
    extra: dict = field(default_factory=dict, repr=False, compare=False, kw_only=True)

    @classmethod
    def upgrade(cls, data: dict, version: int) -> dict:
        """``data`` of an older ``version`` in this version's form (default: unchanged)."""
        return data

    @classmethod
    def from_dict(cls, data) -> Record:
        """The record in the JSON object ``data``; :class:`RecordProblem` naming what is wrong."""
        if not isinstance(data, dict):
            raise RecordProblem(f"a JSON {type(data).__name__}, not a record")
        version = data.get("version", 0)
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise RecordProblem(f"field 'version' is {version!r}, not a record version")
        if version > cls.VERSION:
            raise RecordProblem(
                f"a {cls.__name__} of version {version}, written by a newer selfconsistency (this one reads up to "
                f"{cls.VERSION}); upgrade the package"
            )
        data = cls.upgrade(dict(data), version)
        values, extra = checked_fields(cls, data)
        extra.pop("version", None)
        record = cls(**values, extra=extra)
        problem = record.problem()
        if problem:
            raise RecordProblem(problem)
        return record

    @classmethod
    def coerce(cls, record) -> Record:
        """``record`` if it is one of this class, else :meth:`from_dict` of it (a dict from an older caller)."""
        return record if isinstance(record, cls) else cls.from_dict(record)

    def problem(self) -> str | None:
        """What makes this record inconsistent beyond its field types (default: nothing), for :meth:`from_dict`."""
        return None

    def __getitem__(self, key: str):
        """``record["field"]``: the field as it is in the JSON (records were dicts before they were typed;
        this read access warns and goes in 0.3: use ``record.field``)."""
        warnings.warn(
            f"{type(self).__name__} is a typed record: read record.{key}, not record[{key!r}] (dict access goes "
            "in 0.3)",
            DeprecationWarning,
            stacklevel=2,
        )
        if key in self.extra:
            return self.extra[key]
        if key == "extra" or key not in {f.name for f in fields(self)}:
            raise KeyError(key)
        return _plain(getattr(self, key))

    def get(self, key: str, default=None):
        """``record.get("field", default)``, as for a dict (deprecated like ``record["field"]``)."""
        try:
            return self[key]
        except KeyError:
            return default

    def to_dict(self) -> dict:
        """The JSON object of this record: its fields, the fields it kept from the file, and ``version``."""
        out = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None and f.name in self.OMIT_NONE:
                continue
            out[f.name] = _plain(value)
        out.update(self.extra)
        out["version"] = self.VERSION
        return out


def config_check(config, relpath: str):
    """A :attr:`~.runs.Run.validate`: the record found at ``relpath`` must have been made with ``config`` (its
    ``config`` field); otherwise a ``ValueError`` says to use another output directory (the run is not redone
    silently over results of another protocol)."""

    def validate(record) -> None:
        if record.config != config:
            raise ValueError(
                f"{relpath} in the output directory was made with another configuration ({_plain(record.config)}, "
                f"now {_plain(config)}); use another --out directory"
            )

    return validate
