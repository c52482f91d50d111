"""lychee-style --accept ranges: parsing, membership, canonical text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkkeeper.check.accept import AcceptRangeError, AcceptRanges

codes = st.integers(min_value=100, max_value=999)


def test_default_is_2xx() -> None:
    accept = AcceptRanges.default()
    assert 200 in accept and 299 in accept
    assert 199 not in accept and 300 not in accept and 404 not in accept
    assert str(accept) == "200..=299"


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("200..=299,403", [200, 250, 299, 403], [300, 402, 404]),
        ("200..300", [200, 299], [300]),
        ("..=204", [100, 204], [205]),
        ("..200", [100, 199], [200]),
        (" 429 , 200..=204 ", [429, 204], [205, 428]),
        ("999", [999], [998]),
    ],
)
def test_lychee_syntax(text: str, inside: list[int], outside: list[int]) -> None:
    accept = AcceptRanges.parse(text)
    for code in inside:
        assert code in accept
    for code in outside:
        assert code not in accept


def test_overlapping_and_adjacent_items_merge() -> None:
    assert str(AcceptRanges.parse("200..=250,240..=299,300,403")) == "200..=300,403"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty --accept value"),
        ("200..=299,", "empty item"),
        ("abc", "invalid --accept item 'abc'"),
        ("20", "invalid --accept item '20'"),
        ("300..=200", "the end is before the start"),
        ("200..200", "the end is before the start"),
        ("099", "outside 100..=999"),
        ("200-299", "invalid --accept item"),
    ],
)
def test_errors_name_the_bad_item(text: str, message: str) -> None:
    with pytest.raises(AcceptRangeError, match=message):
        AcceptRanges.parse(text)


@given(st.lists(st.tuples(codes, codes).map(sorted), min_size=1, max_size=8))
def test_canonical_text_round_trips(spans: list[list[int]]) -> None:
    accept = AcceptRanges.from_spans((low, high) for low, high in spans)
    assert AcceptRanges.parse(str(accept)) == accept


@given(
    st.lists(st.tuples(codes, codes).map(sorted), min_size=1, max_size=8),
    st.lists(st.booleans(), min_size=8, max_size=8),
    codes,
)
def test_membership_matches_the_written_items(
    spans: list[list[int]], inclusive: list[bool], probe: int
) -> None:
    items = []
    expected = set()
    for (low, high), incl in zip(spans, inclusive, strict=False):
        if incl or high == low:
            items.append(f"{low}..={high}")
            expected.update(range(low, high + 1))
        else:
            items.append(f"{low}..{high}")
            expected.update(range(low, high))
    accept = AcceptRanges.parse(",".join(items))
    assert (probe in accept) == (probe in expected)
    assert accept.codes() == sorted(expected)


@given(st.text(max_size=20))
def test_parser_never_crashes_on_garbage(text: str) -> None:
    try:
        accept = AcceptRanges.parse(text)
    except AcceptRangeError:
        return
    assert all(100 <= code <= 999 for code in accept.codes())
