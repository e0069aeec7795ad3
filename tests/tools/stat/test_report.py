"""nsq_stat's table: the header, the rows and the rates, character for character."""

from __future__ import annotations

from trinsq.tools.stat._report import ChannelTotals, StatReport, format_header, format_row

# nsq_stat v1.3.0's header, as it prints it
HEADER = (
    "------rate------+----------------depth----------------+--------------metadata---------------\n"
    "ingress  egress |   total     mem    disk inflt   def |     req     t-o         msgs clients\n"
)


def test_header_is_nsq_stats() -> None:
    assert format_header() == HEADER


def test_row_has_nsq_stats_widths_and_rates_over_the_interval() -> None:
    before = ChannelTotals(depth=10, memory_depth=10, message_count=100)
    after = ChannelTotals(
        depth=16,
        memory_depth=6,
        backend_depth=10,
        in_flight_count=3,
        deferred_count=2,
        requeue_count=7,
        timeout_count=1,
        message_count=125,
        client_count=4,
    )
    # 25 in over 2 s: 12.5 -> 12; out: 25 - (16 - 10) = 19 over 2 s: 9.5 -> 9
    assert format_row(before, after, 2.0) == (
        "     12       9 |      16       6      10     3     2 |"
        "       7       1          125       4\n"
    )


def test_rates_truncate_toward_zero_and_may_be_negative() -> None:
    # the depth fell by more than came in (a channel emptied): egress above ingress,
    # and a counter that went back (a node left) gives a negative rate, as in Go
    before = ChannelTotals(depth=50, message_count=1000)
    after = ChannelTotals(depth=0, message_count=997)
    assert format_row(before, after, 2.0).startswith("     -1      23 |")


def test_wide_numbers_push_the_columns_as_go_does() -> None:
    row = format_row(ChannelTotals(), ChannelTotals(message_count=10**13), 1.0)
    assert row.split("|")[0] == f"{10**13:7d} {10**13:7d} "
    assert row.endswith(f" {10**13:12d}       0\n")


def test_first_poll_sets_the_baseline_and_headers_repeat_every_25_polls() -> None:
    report = StatReport(interval=1.0)
    texts = [report.poll(ChannelTotals(message_count=n * 10, depth=n)) for n in range(52)]
    assert texts[0] == HEADER  # no row: nothing to compare with yet
    row = "     10       9 |"
    for index in range(1, 52):
        expected_header = HEADER if index % 25 == 0 else ""
        assert texts[index].startswith(expected_header + row), index
        assert texts[index].count("\n") == (3 if expected_header else 1)


def test_totals_sum_over_nodes() -> None:
    first = ChannelTotals(depth=1, memory_depth=1, message_count=5, client_count=1)
    second = ChannelTotals(depth=2, backend_depth=2, message_count=7, client_count=2)
    assert ChannelTotals.sum([first, second]) == ChannelTotals(
        depth=3, memory_depth=1, backend_depth=2, message_count=12, client_count=3
    )
