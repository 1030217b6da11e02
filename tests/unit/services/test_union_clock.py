"""The F12 working-day clock (``services.union_clock``) on fixed dates of the 2025 calendar:
National Day 2025-10-01..08 off, Sunday 2025-09-28 and Saturday 2025-10-11 worked (调休)."""

from __future__ import annotations

from datetime import date

from services.union_clock import (
    Pause,
    add_working_days,
    close_due,
    due_status,
    excluded_days,
    is_working_day,
    work_order,
)

D = date.fromisoformat


def test_the_calendar_knows_the_holiday_and_the_working_weekends() -> None:
    assert not is_working_day(D("2025-10-01")) and not is_working_day(D("2025-10-08"))
    assert is_working_day(D("2025-09-28"))  # Sunday, 调休
    assert is_working_day(D("2025-10-11"))  # Saturday, 调休
    assert not is_working_day(D("2025-09-27"))  # an ordinary Saturday


def test_acceptance_counts_the_working_sunday() -> None:
    # complete materials on Friday 09-26: Sunday 09-28 is a working day, so 2 working
    # days end on Monday 09-29 (Monday to Friday counting would say Tuesday 09-30)
    assert add_working_days(D("2025-09-26"), 2) == D("2025-09-29")


def test_closure_deadline_runs_across_national_day() -> None:
    # accepted on Tuesday 09-30: 10-01..08 are holidays (时效顺延), then Thu 10-09, Fri 10-10
    # and the working Saturday 10-11
    assert add_working_days(D("2025-09-30"), 3) == D("2025-10-11")
    assert close_due(D("2025-09-30"), []) == D("2025-10-11")


def test_applicant_delay_and_investigation_are_not_counted() -> None:
    pauses = [Pause("await_applicant", D("2025-10-09"), D("2025-10-10")),  # 10-09 out
              Pause("investigate", D("2025-10-13"), D("2025-10-15"))]      # 10-13, 10-14 out
    assert excluded_days(pauses) == {D("2025-10-09"), D("2025-10-13"), D("2025-10-14")}
    # 10-10 (1), 10-11 (2), [10-12 Sunday], [10-13, 10-14 investigated], 10-15 (3)
    assert close_due(D("2025-09-30"), pauses) == D("2025-10-15")


def test_an_open_pause_stops_the_clock() -> None:
    assert close_due(D("2025-09-30"), [Pause("investigate", D("2025-10-09"))]) is None
    assert due_status(None, False, D("2025-12-01")) == "stopped"


def test_due_status_soon_overdue_met() -> None:
    due = D("2025-10-11")
    assert due_status(due, False, D("2025-10-12")) == "overdue"
    assert due_status(due, False, D("2025-10-10")) == "soon"     # the next working day
    assert due_status(due, False, D("2025-09-30")) == "running"  # holidays in between
    assert due_status(due, True, D("2025-12-01")) == "met"


def test_urgent_cases_come_first_then_the_earliest_deadline() -> None:
    cases = [{"case_no": "A", "urgent": False, "next_due": "2025-10-09", "received_at": "1"},
             {"case_no": "B", "urgent": True, "next_due": "2025-10-15", "received_at": "2"},
             {"case_no": "C", "urgent": False, "next_due": None, "received_at": "0"},
             {"case_no": "D", "urgent": True, "next_due": "2025-10-10", "received_at": "3"}]
    assert [c["case_no"] for c in work_order(cases)] == ["D", "B", "A", "C"]


def test_a_year_without_a_calendar_counts_monday_to_friday() -> None:
    # chinese-calendar ships the years the State Council has published; 2100 is not one
    assert add_working_days(D("2100-01-01"), 1) == D("2100-01-04")  # Friday -> Monday
