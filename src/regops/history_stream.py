"""``regops history`` written as it is made: the text table, ``--json`` and ``--format csv`` of a history a part
(:data:`PART` moves) at a time, byte for byte what :func:`regops.report.history_text`, :func:`regops.report.to_json`
of its entries and :func:`regops.report.history_csv` make of it whole. The whole registry's history at 100,000
versions is 350,000 moves (52 MB of text, 116 MB of JSON): held whole, as rows, cells, entries or one document, it
took 0.4-1.3 GB; a part at a time, memory is the moves' columns and one part's rows, and the first lines reach the
reader (a pager, ``head``) before the last are made.

Pure: each function yields pieces of the text; the command writes them out.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from json.encoder import encode_basestring_ascii
from operator import add, attrgetter
from typing import Any, Final

from regops.answers import HistoryEntry
from regops.queries import History
from regops.report import (
    HISTORY_COLUMNS,
    HISTORY_HEADERS,
    aligned_columns,
    history_columns,
    history_csv_cells,
    history_text,
    names_models,
    plain,
)

__all__ = ["PART", "SHORT", "history_csv_parts", "history_json_parts", "history_text_parts", "short_text"]

PART: Final = 4096  # moves rendered at a time: ~0.6 MB of text, a few MB of rows
SHORT: Final = 50_000  # moves of a history whose text is made whole, while git looks (~7 MB of text)


def short_text(history: History, *, one_model: bool = False) -> str | None:
    """:func:`regops.report.history_text` of a history of at most :data:`SHORT` moves (made while git looks at the
    models: the filtered histories, ``--bots --since``); None for a longer one, written a part at a time."""
    return history_text(history, one_model=one_model) if len(history.kept) <= SHORT else None


def _parts(history: History) -> range:
    return range(0, len(history.kept), PART)


def history_text_parts(history: History, *, one_model: bool = False) -> Iterator[str]:
    """:func:`regops.report.history_text`, a part at a time: each part's cells made once, kept joined (one text per
    column, ~40 MB at 100k where the cells as lists took ~3 times that) until the columns' widths are known, then
    each part's lines padded to them."""
    if not history.kept:
        yield "no history matches\n"
        return
    models = names_models(history, one_model=one_model)
    widths = [len(header) for header in HISTORY_HEADERS[:-1]]
    parts: deque[list[str | list[str]]] = deque()
    for start in _parts(history):
        columns = history_columns(history.kept[start : start + PART], models=models, head=False)
        widths = [max(width, *map(len, column)) for width, column in zip(widths, columns[:-1], strict=True)]
        parts.append(_joined(columns))
    yield aligned_columns([[header] for header in HISTORY_HEADERS], widths) + "\n"
    while parts:  # each part let go once written
        part = parts.popleft()
        yield aligned_columns([cells.split(_CUT) if isinstance(cells, str) else cells for cells in part], widths) + "\n"


_CUT: Final = "\0"


def _joined(columns: list[list[str]]) -> list[str | list[str]]:
    """Each column as one text, its cells cut by NUL; a column with a NUL in a cell (what was said may hold one)
    kept as its list."""
    joined: list[str | list[str]] = []
    for column in columns:
        text = _CUT.join(column)
        joined.append(text if text.count(_CUT) == len(column) - 1 else column)
    return joined


def history_csv_parts(history: History) -> Iterator[str]:
    """:func:`regops.report.history_csv` of the history's entries (and the newline ``regops`` ends it with), a part
    at a time."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    for start in _parts(history):
        writer.writerows(map(history_csv_cells, history.entries(start, start + PART)))
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


def history_json_parts(history: History) -> Iterator[str]:
    """:func:`regops.report.to_json` of the history's entries (and the newline ``regops`` ends it with), a part at
    a time: each entry's object written by :func:`_entry_json`."""
    if not history.kept:
        yield "[]\n"
        return
    opening = "["
    for start in _parts(history):
        yield opening + ",".join(map(_entry_json, history.entries(start, start + PART)))
        opening = ","
    yield "\n]\n"


# An entry as to_json indents it in a list: its fields in order, "from_" as "from" (report.plain's names).
_KEYS: Final = tuple(f"\n    {json.dumps(f.name.rstrip('_'))}: " for f in dataclasses.fields(HistoryEntry))
_VALUES: Final = attrgetter(*(f.name for f in dataclasses.fields(HistoryEntry)))
_ENCODER: Final = json.JSONEncoder(indent=2, allow_nan=False)  # json.dumps(..., indent=2, allow_nan=False)


def _entry_json(entry: HistoryEntry) -> str:
    """One entry's object as ``to_json`` of a list of entries writes it (indented one level), each text value
    encoded by json's C encoder: the indenting encoder is pure Python (~10 µs an entry) and ``plain`` looks at
    every value (another ~10 µs)."""
    return "\n  {" + ",".join(map(add, _KEYS, map(_json_value, _VALUES(entry)))) + "\n  }"


def _json_value(value: Any) -> str:
    encode = _ENCODE.get(type(value))
    return encode(value) if encode is not None else _nested_json(value)


def _nested_json(value: Any) -> str:
    return _ENCODER.encode(plain(value)).replace("\n", "\n    ")


def _tuple_json(value: tuple[Any, ...]) -> str:
    if not value:  # no approvers, no evidence
        return "[]"
    if all(type(item) is str for item in value):  # approvers
        return "[\n      " + ",\n      ".join(map(encode_basestring_ascii, value)) + "\n    ]"
    return _nested_json(value)


_ENCODE: Final[dict[type, Callable[[Any], str]]] = {
    str: encode_basestring_ascii,
    type(None): lambda _: "null",
    int: int.__repr__,
    datetime: lambda at: f'"{plain(at)}"',  # an ISO 8601 time has nothing to escape
    tuple: _tuple_json,
}
