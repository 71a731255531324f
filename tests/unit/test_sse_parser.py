"""The SDK's Server-Sent Events parser against the rules of the HTML spec."""

from __future__ import annotations

from ledgerflow.remote.sse import SSEEvent, SSEParser


def parse(text: str) -> tuple[list[SSEEvent], SSEParser]:
    parser = SSEParser()
    events = [e for line in text.split("\n") if (e := parser.feed(line)) is not None]
    return events, parser


def test_data_lines_are_joined_with_newlines_and_a_blank_line_dispatches():
    events, _ = parse("data: first\ndata:second\ndata\n\n")
    assert events == [SSEEvent("message", "first\nsecond\n", None, {})]


def test_the_event_field_names_the_type_and_only_one_leading_space_is_dropped():
    events, _ = parse("event: run.finished\ndata:  two spaces\n\n")
    assert events[0].type == "run.finished" and events[0].data == " two spaces"


def test_comments_are_ignored_and_a_message_without_data_is_not_dispatched():
    events, _ = parse(": keep-alive\n\nevent: lonely\n\n: another\ndata: x\n\n")
    assert [(e.type, e.data) for e in events] == [("message", "x")]


def test_the_last_event_id_carries_over_to_later_messages_and_ids_with_nul_are_ignored():
    events, parser = parse("id: 7\ndata: a\n\ndata: b\n\nid: bad\0\ndata: c\n\nid\ndata: d\n\n")
    assert [e.id for e in events] == ["7", "7", "7", ""]
    assert parser.last_id == ""


def test_retry_takes_only_digits_and_unknown_fields_are_kept_per_message():
    events, parser = parse("retry: 2000\nretry: soon\nposition: 42\npartition: p/0\ndata: x\n\n")
    assert parser.retry_ms == 2000
    assert events[0].fields == {"position": "42", "partition": "p/0"}
    more, _ = parse("position: 1\ndata: x\n\ndata: y\n\n")
    assert [dict(e.fields) for e in more] == [{"position": "1"}, {}]


def test_a_byte_order_mark_at_the_start_is_skipped_and_an_unfinished_message_is_dropped():
    events, _ = parse("\ufeffevent: a\ndata: 1\n\nevent: b\ndata: 2")
    assert [e.type for e in events] == ["a"]
