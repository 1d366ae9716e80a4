"""A district's schools and classrooms from a CSV file (a bureau keeps them in a spreadsheet).

The file is UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8" writes one), comma
separated, with a header row. Columns (in any order; other columns are ignored and listed)::

    school,classroom,role[,kind]
    城关第一中学,初一(1)班,lead
    石桥村小学,三年级,remote,hardware

- ``school`` — the school's name; a school of that name in the bureau is used, otherwise created.
- ``classroom`` — the classroom's name, unique within its school.
- ``role`` — ``lead`` (主讲: may lead a lesson, and receive one) or ``remote`` (接收: receives
  only); the Chinese words 主讲/主讲课堂 and 接收/接收课堂/远端/听讲 are accepted too.
- ``kind`` (optional) — ``browser`` (default) or ``hardware``.

Header names may also be given in Chinese: 学校, 课堂/教室, 角色/类型, 设备. Row numbers are
the spreadsheet's: the header is row 1. Every problem of a row is reported (row, field, code, an
English and a Chinese reason); a row with any problem is never imported. Pure logic: no I/O.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from .models import CLASSROOM_KINDS

MAX_ROWS = 2000
MAX_NAME = 200
COLUMNS = ("school", "classroom", "role", "kind")
REQUIRED = ("school", "classroom", "role")
HEADER_ALIASES = {
    "school": "school",
    "学校": "school",
    "学校名称": "school",
    "classroom": "classroom",
    "课堂": "classroom",
    "教室": "classroom",
    "课堂名称": "classroom",
    "role": "role",
    "角色": "role",
    "类型": "role",
    "kind": "kind",
    "设备": "kind",
    "终端": "kind",
}
ROLE_VALUES = {
    "lead": True,
    "主讲": True,
    "主讲课堂": True,
    "remote": False,
    "接收": False,
    "接收课堂": False,
    "远端": False,
    "听讲": False,
}
KIND_VALUES = {"browser": "browser", "浏览器": "browser", "hardware": "hardware", "硬件": "hardware"}
FIELD_ZH = {"school": "学校", "classroom": "课堂", "role": "角色", "kind": "设备类型"}


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    code: str
    message: str
    message_zh: str


@dataclass(frozen=True)
class ImportRow:
    row: int
    school: str
    classroom: str
    lead_capable: bool
    kind: str
    new_school: bool


@dataclass
class ImportPlan:
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    # what a bad row holds (school, classroom, role, kind), for the preview table
    bad_values: dict[int, dict[str, str]] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def bad_rows(self) -> list[int]:
        return sorted({e.row for e in self.errors})

    @property
    def new_schools(self) -> list[str]:
        seen: list[str] = []
        for r in self.rows:
            if r.new_school and r.school not in seen:
                seen.append(r.school)
        return seen


class CsvFileError(Exception):
    """The whole file is unusable (encoding, header, size): nothing in it is looked at."""

    def __init__(self, code: str, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.message_zh = message_zh


def decode(data: bytes) -> str:
    """UTF-8 text without its byte-order mark."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvFileError(
            "csv_encoding",
            f"the file is not UTF-8 (byte {exc.start}): save it as 'CSV UTF-8' and try again",
            f"文件不是 UTF-8 编码（第 {exc.start} 字节）：请另存为“CSV UTF-8”后重试",
        ) from None


def _header(cells: list[str]) -> tuple[dict[str, int], list[str]]:
    where: dict[str, int] = {}
    ignored: list[str] = []
    for i, raw in enumerate(cells):
        name = HEADER_ALIASES.get(raw.strip().lower())
        if name is None or name in where:
            ignored.append(raw.strip())
        else:
            where[name] = i
    missing = [c for c in REQUIRED if c not in where]
    if missing:
        raise CsvFileError(
            "csv_header",
            f"the header row must name the columns school,classroom,role (missing: {', '.join(missing)})",
            f"首行须为列名 school,classroom,role（缺少：{'、'.join(FIELD_ZH[m] + ' ' + m for m in missing)}）",
        )
    return where, ignored


def _bad_text(value: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in value)


def parse_classrooms_csv(
    data: bytes, existing_rooms: set[tuple[str, str]], existing_schools: set[str]
) -> ImportPlan:
    """Check every row of a classroom CSV against the bureau's ``existing_rooms``
    ((school name, classroom name) pairs) and ``existing_schools`` (names)."""
    text = decode(data)
    if "\x00" in text:
        raise CsvFileError("csv_encoding", "the file contains NUL bytes: it is not a CSV text file",
                           "文件含有 NUL 字节，不是 CSV 文本文件")
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    try:
        records = list(reader)
    except csv.Error as exc:
        raise CsvFileError("csv_syntax", f"the file is not valid CSV: {exc}", f"文件不是有效的 CSV：{exc}") from None
    while records and not any(c.strip() for c in records[0]):
        records.pop(0)
    if not records:
        raise CsvFileError("csv_empty", "the file is empty: a header row and one row per classroom are needed",
                           "文件为空：需要一行列名，之后每行一个课堂")
    if len(records) - 1 > MAX_ROWS:
        raise CsvFileError("csv_too_many_rows", f"at most {MAX_ROWS} classrooms per file",
                           f"每个文件最多 {MAX_ROWS} 个课堂")
    where, ignored = _header(records[0])
    plan = ImportPlan(ignored_columns=ignored)
    seen: dict[tuple[str, str], int] = {}
    for number, cells in enumerate(records[1:], start=2):
        if not any(c.strip() for c in cells):
            continue  # a blank line
        errors = _check_row(number, cells, where, len(records[0]))
        values = {name: (cells[i].strip() if i < len(cells) else "") for name, i in where.items()}
        school, room = values["school"], values["classroom"]
        if not errors:
            key = (school, room)
            if key in existing_rooms:
                errors.append(RowError(number, "classroom", "exists",
                                       f"school {school!r} already has a classroom {room!r}",
                                       f"学校“{school}”已有课堂“{room}”"))
            elif key in seen:
                errors.append(RowError(number, "classroom", "duplicate_in_file",
                                       f"the same school and classroom as row {seen[key]}",
                                       f"与第 {seen[key]} 行的学校和课堂重复"))
            else:
                seen[key] = number
        if errors:
            plan.errors.extend(errors)
            plan.bad_values[number] = {k: v[:MAX_NAME] for k, v in values.items()}
            continue
        plan.rows.append(
            ImportRow(
                row=number,
                school=school,
                classroom=room,
                lead_capable=ROLE_VALUES[values["role"].lower()],
                kind=KIND_VALUES[values.get("kind", "").lower() or "browser"],
                new_school=school not in existing_schools,
            )
        )
    return plan


def _check_row(number: int, cells: list[str], where: dict[str, int], width: int) -> list[RowError]:
    errors: list[RowError] = []
    extra = [c for c in cells[width:] if c.strip()]
    if extra:
        errors.append(RowError(number, "row", "too_many_cells",
                               f"{len(cells)} cells but the header has {width} columns (a comma in a name? quote it)",
                               f"本行有 {len(cells)} 个单元格，但首行只有 {width} 列（名称含逗号时请加引号）"))
    for name, i in where.items():
        value = cells[i].strip() if i < len(cells) else ""
        zh = FIELD_ZH[name]
        if not value:
            if name == "kind":
                continue
            errors.append(RowError(number, name, "required", f"{name} is empty", f"{zh}（{name}）不能为空"))
        elif len(value) > MAX_NAME:
            errors.append(RowError(number, name, "too_long", f"{name} is longer than {MAX_NAME} characters",
                                   f"{zh}（{name}）超过 {MAX_NAME} 个字符"))
        elif _bad_text(value):
            errors.append(RowError(number, name, "invalid_text", f"{name} contains control characters",
                                   f"{zh}（{name}）含有控制字符"))
        elif name == "role" and value.lower() not in ROLE_VALUES:
            errors.append(RowError(number, name, "invalid_role",
                                   f"role must be lead or remote, not {value[:40]!r}",
                                   f"角色（role）须为 lead（主讲）或 remote（接收），而不是“{value[:40]}”"))
        elif name == "kind" and value.lower() not in KIND_VALUES:
            errors.append(RowError(number, name, "invalid_kind",
                                   f"kind must be one of {', '.join(CLASSROOM_KINDS)}, not {value[:40]!r}",
                                   f"设备类型（kind）须为 browser 或 hardware，而不是“{value[:40]}”"))
    return errors
