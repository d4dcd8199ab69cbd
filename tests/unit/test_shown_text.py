"""What a submission wrote reaches terminals, JUnit XML, PostgreSQL and browsers only as shown text
(graders/shown_text.py): a report escapes the characters each of them mishandles, as it is built or assigned."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

from graders.cli import print_human
from graders.report import Report, TestReport, TestStatus, Verdict, to_junit
from graders.shown_text import shown

# Clear the screen, move up, erase the line, return to its start, set the window title: a fake verdict drawn over
# the real one.
SPOOF = "\n\x1b[1A\x1b[2K\rnnx-module-basics: accepted  (7/7 tests, 5 ms)\x1b]0;t\x07"


@pytest.mark.parametrize(("text", "seen"), [
    ("a\x00b", "a\\x00b"),
    ("\x1b[2J", "\\x1b[2J"),
    ("line\r\nnext", "line\nnext"),
    ("50%\r100%", "50%\\r100%"),
    ("\x7f\x85\x9b", "\\x7f\\x85\\x9b"),
    ("x\ud800", "x\\ud800"),
    ("\u202eevil\u2066", "\\u202eevil\\u2066"),
    ("\ufffe\uffff", "\\ufffe\\uffff"),
    ("tabs\tand\nnewlines stay; é, 中文 and 😀 too", "tabs\tand\nnewlines stay; é, 中文 and 😀 too"),
])
def test_each_unsafe_character_is_shown_as_its_escape(text: str, seen: str) -> None:
    assert shown(text) == seen
    assert shown(shown(text)) == shown(text)


def test_a_report_escapes_what_it_is_built_with_and_what_is_assigned_to_it() -> None:
    test = TestReport(name="example", public=True, status=TestStatus.ERROR, message="E: x\x00y",
                      traceback="Traceback\n  " + SPOOF)
    report = Report(problem="p", verdict=Verdict.RUNTIME_ERROR, tests=[test], stdout="\x1b[31mred\x1b[0m\n")
    report.message = "0 of 1 tests passed: " + SPOOF
    test.got = "\x00"
    report.hints = ["\x1b[2J"]
    dumped = str(report.to_json_dict())
    for raw in ("\x00", "\x1b", "\r", "\x07"):
        assert raw not in dumped and raw not in report.model_dump_json()
    assert report.stdout == "\\x1b[31mred\\x1b[0m\n" and test.message == "E: x\\x00y" and test.got == "\\x00"
    assert report.hints == ["\\x1b[2J"]
    # A stored report read back is unchanged.
    assert Report.model_validate(report.to_json_dict()) == report


def test_junit_xml_of_a_report_with_control_characters_parses() -> None:
    """XML 1.0 cannot hold NUL or most other C0 controls, even escaped: CI could not read the file."""
    test = TestReport(name="example", public=True, status=TestStatus.FAILED, message="got \x00\x01\x0c")
    report = Report(problem="p", verdict=Verdict.WRONG_ANSWER, tests=[test], stdout="\x00\x1b[2J", diagnosis="\x0b")
    suite = ET.fromstring(to_junit(report).split("\n", 1)[1])
    assert suite.find("testcase/failure").get("message") == "got \\x00\\x01\\x0c"  # type: ignore[union-attr]
    assert suite.find("system-out").text == "\\x00\\x1b[2J"  # type: ignore[union-attr]


def test_the_terminal_report_starts_no_line_the_submission_wrote(capsys: pytest.CaptureFixture[str]) -> None:
    test = TestReport(name="example", public=True, status=TestStatus.ERROR, message="ValueError: " + SPOOF,
                      traceback="Traceback (most recent call last, your code only):\nValueError: " + SPOOF)
    report = Report(problem="nnx-module-basics", verdict=Verdict.RUNTIME_ERROR, total=1, tests=[test],
                    message="0 of 1 tests passed. First failure, test 'example': ValueError: " + SPOOF)
    print_human(report)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    lines = out.splitlines()
    assert lines[0] == "nnx-module-basics: runtime_error  (0/1 tests, 0 ms)"
    assert [line for line in lines[1:] if line.startswith("nnx-module-basics")] == []
    assert [line for line in lines[1:] if "accepted" in line and not line.startswith("  ")] == []
