"""The classroom CSV parser: encodings, header names, every bad row with its row number,
field and a reason in Chinese and English."""

from __future__ import annotations

import pytest

from signaling.schedule.csv_import import MAX_ROWS, CsvFileError, ImportPlan, parse_classrooms_csv


def parse(text: str, rooms: set[tuple[str, str]] | None = None, schools: set[str] | None = None,
          bom: bool = False) -> ImportPlan:
    data = text.encode("utf-8")
    if bom:
        data = b"\xef\xbb\xbf" + data
    return parse_classrooms_csv(data, rooms or set(), schools or set())


def test_good_file_with_and_without_bom_gives_the_same_rows() -> None:
    text = "school,classroom,role\r\n城关一中,初一(1)班,lead\r\n石桥小学,三年级,remote\r\n"
    for bom in (False, True):
        plan = parse(text, schools={"城关一中"}, bom=bom)
        assert plan.errors == []
        assert [(r.row, r.school, r.classroom, r.lead_capable, r.new_school) for r in plan.rows] == [
            (2, "城关一中", "初一(1)班", True, False),
            (3, "石桥小学", "三年级", False, True),
        ]
        assert plan.new_schools == ["石桥小学"]


def test_chinese_headers_any_order_optional_kind_and_ignored_columns() -> None:
    plan = parse("角色,学校,课堂,备注,kind\n主讲,A 校,1 班,x,hardware\n接收,A 校,2 班,,\n")
    assert plan.errors == []
    assert plan.ignored_columns == ["备注"]
    assert [(r.classroom, r.lead_capable, r.kind) for r in plan.rows] == [("1 班", True, "hardware"),
                                                                        ("2 班", False, "browser")]


def test_every_bad_row_is_reported_with_row_field_and_both_languages() -> None:
    text = (
        "school,classroom,role\n"
        "A,1,lead\n"           # 2 ok
        ",2,remote\n"          # 3 school empty
        "A,,teacher\n"         # 4 classroom empty and a bad role
        "A,1,remote\n"         # 5 duplicate of row 2
        "A,old,lead\n"         # 6 exists already
        "\n"                   # 7 blank: skipped
        "A,\"x,y\",lead,extra\n"  # 8 too many cells
        "B,3,Remote\n"         # 9 ok (case-insensitive role)
    )
    plan = parse(text, rooms={("A", "old")})
    assert [r.row for r in plan.rows] == [2, 9]
    got = [(e.row, e.field, e.code) for e in plan.errors]
    assert got == [
        (3, "school", "required"),
        (4, "classroom", "required"),
        (4, "role", "invalid_role"),
        (5, "classroom", "duplicate_in_file"),
        (6, "classroom", "exists"),
        (8, "row", "too_many_cells"),
    ]
    assert plan.bad_rows == [3, 4, 5, 6, 8]
    for e in plan.errors:
        assert e.message and e.message_zh and e.message != e.message_zh
    assert "row 2" in plan.errors[3].message and "第 2 行" in plan.errors[3].message_zh


def test_long_names_and_control_characters_are_bad_rows() -> None:
    plan = parse(f"school,classroom,role\nA,{'x' * 201},lead\nA,a\x07b,lead\nA,ok,hardware\n")
    assert [(e.row, e.field, e.code) for e in plan.errors] == [
        (2, "classroom", "too_long"), (3, "classroom", "invalid_text"), (4, "role", "invalid_role")]
    assert plan.rows == []


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("学校,课堂,角色\n".encode("gbk") + b"A,1,lead\n", "csv_encoding"),
        (b"", "csv_empty"),
        (b"\n\n", "csv_empty"),
        (b"name,room\nA,1\n", "csv_header"),
        (b"school,classroom,role\nA,\x00,lead\n", "csv_encoding"),
        (("school,classroom,role\n" + "A,1,lead\n" * (MAX_ROWS + 1)).encode(), "csv_too_many_rows"),
    ],
)
def test_unusable_files_are_refused_as_a_whole(data: bytes, code: str) -> None:
    with pytest.raises(CsvFileError) as info:
        parse_classrooms_csv(data, set(), set())
    assert info.value.code == code
    assert info.value.message and info.value.message_zh


def test_header_error_names_the_missing_columns() -> None:
    with pytest.raises(CsvFileError) as info:
        parse_classrooms_csv(b"school,classroom\nA,1\n", set(), set())
    assert "role" in info.value.message and "角色" in info.value.message_zh
