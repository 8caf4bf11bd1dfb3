"""The active-mode state machine and option checks, without sockets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import genudp
from genudp._options import (
    ACTIVE_MAX,
    ACTIVE_MIN,
    Transition,
    after_delivery,
    check_active,
    check_bufsize,
    check_timeout,
    delivery_budget,
    set_active,
)

modes = st.one_of(st.just(True), st.just(False), st.just("once"), st.integers(1, ACTIVE_MAX))


@pytest.mark.parametrize(
    ("current", "requested", "expected"),
    [
        (False, True, Transition(True, False)),
        (True, False, Transition(False, False)),
        (True, "once", Transition("once", False)),
        ("once", True, Transition(True, False)),
        # A count starts from 0 when the socket has none.
        (True, 5, Transition(5, False)),
        ("once", 5, Transition(5, False)),
        (False, 5, Transition(5, False)),
        # An existing count is added to.
        (3, 5, Transition(8, False)),
        (3, -2, Transition(1, False)),
        # Reaching 0 or less: passive, and udp_passive is sent.
        (3, -3, Transition(False, True)),
        (3, -10, Transition(False, True)),
        (False, 0, Transition(False, True)),
        (True, -1, Transition(False, True)),
        # The upper bound is inclusive.
        (ACTIVE_MAX - 1, 1, Transition(ACTIVE_MAX, False)),
        (False, ACTIVE_MAX, Transition(ACTIVE_MAX, False)),
    ],
)
def test_set_active_table(current: genudp.Active, requested: genudp.Active, expected: Transition) -> None:
    assert set_active(current, requested) == expected


@pytest.mark.parametrize(
    ("current", "requested"),
    [(ACTIVE_MAX, 1), (False, ACTIVE_MAX + 1), (True, ACTIVE_MIN - 1), (100, ACTIVE_MAX)],
)
def test_set_active_out_of_range_is_einval(current: genudp.Active, requested: int) -> None:
    with pytest.raises(genudp.Error) as info:
        set_active(current, requested)
    assert info.value.reason == "einval"
    assert str(ACTIVE_MAX) in str(info.value) or str(ACTIVE_MIN) in str(info.value)


@pytest.mark.parametrize(
    ("current", "count", "expected"),
    [
        (True, 1, Transition(True, False)),
        (True, 64, Transition(True, False)),
        ("once", 1, Transition(False, False)),  # OTP sends no udp_passive for once
        (3, 1, Transition(2, False)),
        (3, 3, Transition(False, True)),
        (1, 1, Transition(False, True)),
    ],
)
def test_after_delivery_table(current: genudp.Active, count: int, expected: Transition) -> None:
    assert after_delivery(current, count) == expected


@pytest.mark.parametrize(("current", "count"), [(False, 1), ("once", 2), (3, 4), (3, 0)])
def test_after_delivery_beyond_budget_is_a_bug(current: genudp.Active, count: int) -> None:
    with pytest.raises(ValueError, match="cannot deliver"):
        after_delivery(current, count)


@given(mode=modes, steps=st.lists(st.integers(-40000, 40000), max_size=20))
def test_counts_stay_in_range_and_passive_iff_nonpositive(mode: genudp.Active, steps: list[int]) -> None:
    """Whatever sequence of setopts(active=N) arrives, the mode is a valid one; a count that
    would leave the range is refused without changing anything; udp_passive is sent exactly when
    the resulting count is <= 0."""
    for n in steps:
        base = mode if type(mode) is int else 0
        try:
            t = set_active(mode, n)
        except genudp.Error as exc:
            assert exc.reason == "einval"
            assert not ACTIVE_MIN <= n <= ACTIVE_MAX or base + n > ACTIVE_MAX
            continue
        assert t.passive_message == (base + n <= 0)
        assert t.mode is False if t.passive_message else t.mode == base + n
        mode = t.mode


@given(count=st.integers(1, ACTIVE_MAX))
def test_n_datagrams_exhaust_a_count_of_n_with_one_passive_message(count: int) -> None:
    mode: genudp.Active = count
    passive_messages = delivered = 0
    while mode is not False:
        batch = min(64, delivery_budget(mode))
        t = after_delivery(mode, batch)
        delivered += batch
        passive_messages += t.passive_message
        mode = t.mode
    assert delivered == count
    assert passive_messages == 1


@pytest.mark.parametrize(
    ("value", "error", "text"),
    [
        ("twice", ValueError, "'once'"),
        (1.5, TypeError, "float"),
        (None, TypeError, "NoneType"),
        (b"once", TypeError, "bytes"),
    ],
)
def test_check_active_rejects_with_a_clear_message(value: object, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match="active must be True, False, 'once' or an int") as info:
        check_active(value)
    assert text in str(info.value)


@pytest.mark.parametrize(("value", "expected"), [(None, None), (0, 0.0), (1, 1.0), (0.25, 0.25), (float("inf"), None)])
def test_check_timeout_accepts(value: object, expected: float | None) -> None:
    assert check_timeout(value) == expected


@pytest.mark.parametrize(
    ("value", "error"), [(-1, ValueError), (float("nan"), ValueError), ("1", TypeError), (True, TypeError)]
)
def test_check_timeout_rejects(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="timeout must be None or a number of seconds >= 0"):
        check_timeout(value)


@pytest.mark.parametrize(
    ("value", "error"), [(0, ValueError), (-5, ValueError), ("big", TypeError), (2**31, ValueError)]
)
def test_check_bufsize_rejects(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="recbuf"):
        check_bufsize(value, "recbuf")
