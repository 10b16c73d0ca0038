from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omniman.money import (
    MoneyError,
    format_qty,
    line_total_q,
    parse_amount_q,
    parse_qty,
    percent_q,
)

qtys = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(1_000_000), places=3)
prices = st.integers(min_value=0, max_value=10**12)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1, "1"),
        (2, "2"),
        ("2", "2"),
        ("0.25", "0.25"),
        ("2.500", "2.5"),
        ("1.0000", "1"),
        (0.1, "0.1"),
        (0.001, "0.001"),
        (1_000_000, "1000000"),
        ("1000000.000", "1000000"),
        (Decimal("3.140"), "3.14"),
    ],
)
def test_qty_accepted_forms_are_canonical(raw, expected):
    assert format_qty(parse_qty(raw)) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (0, "min_value"),
        ("0", "min_value"),
        (-1, "min_value"),
        ("-0.5", "min_value"),
        ("0.0001", "max_decimal_places"),
        (0.0001, "max_decimal_places"),
        ("1.2345", "max_decimal_places"),
        (1_000_001, "max_value"),
        ("1000000.001", "max_value"),
        (True, "invalid_type"),
        (None, "invalid_type"),
        ([1], "invalid_type"),
        ("1e2", "invalid"),
        (" 1", "invalid"),
        ("NaN", "invalid"),
        ("Infinity", "invalid"),
        (float("nan"), "invalid"),
        (float("inf"), "invalid"),
        ("", "invalid"),
        ("1,5", "invalid"),
    ],
)
def test_qty_refused(raw, code):
    with pytest.raises(MoneyError) as exc:
        parse_qty(raw)
    assert exc.value.code == code


def test_zero_qty_only_when_allowed():
    assert parse_qty(0, allow_zero=True) == 0
    assert format_qty(parse_qty("0.000", allow_zero=True)) == "0"
    with pytest.raises(MoneyError):
        parse_qty(-1, allow_zero=True)


@pytest.mark.parametrize("raw", [0, 500, 10**12])
def test_amount_accepts_json_integers_in_range(raw):
    assert parse_amount_q(raw) == raw


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (500.0, "invalid_type"),
        ("500", "invalid_type"),
        (True, "invalid_type"),
        (False, "invalid_type"),
        (None, "invalid_type"),
        (Decimal(500), "invalid_type"),
        (-1, "min_value"),
        (10**12 + 1, "max_value"),
    ],
)
def test_amount_refused(raw, code):
    with pytest.raises(MoneyError) as exc:
        parse_amount_q(raw)
    assert exc.value.code == code


@pytest.mark.parametrize(
    ("qty", "price", "total"),
    [
        ("0.5", 1, 0),  # half to even: 0.5 -> 0
        ("1.5", 1, 2),  # 1.5 -> 2
        ("2.5", 1, 2),  # 2.5 -> 2
        ("0.333", 300, 100),  # 99.9 -> 100
        ("3", 500, 1500),
        ("0.125", 4, 0),  # 0.5 -> 0
        ("0.375", 4, 2),  # 1.5 -> 2
    ],
)
def test_line_total_rounds_half_even(qty, price, total):
    assert line_total_q(Decimal(qty), price) == total


@given(qtys, prices)
def test_line_total_is_exact_half_even_of_the_product(qty, price):
    total = line_total_q(qty, price)
    assert isinstance(total, int)
    exact = qty * price
    assert abs(Decimal(total) - exact) <= Decimal("0.5")
    if abs(Decimal(total) - exact) == Decimal("0.5"):
        assert total % 2 == 0


@given(qtys)
def test_qty_round_trips_through_its_canonical_string(qty):
    text = format_qty(parse_qty(qty))
    assert "E" not in text and "e" not in text
    assert parse_qty(text) == qty
    assert format_qty(parse_qty(text)) == text


@given(st.integers(min_value=0, max_value=10**12))
def test_integer_qty_times_price_is_exact(price):
    assert line_total_q(Decimal(3), price) == 3 * price


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=0.001, max_value=1_000_000))
def test_float_qty_is_read_as_the_literal_the_client_sent(value):
    try:
        qty = parse_qty(value)
    except MoneyError as exc:
        assert exc.code == "max_decimal_places"  # noqa: PT017 - either outcome is checked
        return
    assert qty == Decimal(repr(value))



# The detail is what a client reads in the error body: each refusal says why in words.
@pytest.mark.parametrize(("parse", "raw", "detail", "code"), [
    (parse_qty, True, "qty must be a number or a decimal string.", "invalid_type"),
    (parse_qty, None, "qty must be a number or a decimal string.", "invalid_type"),
    (parse_qty, [1], "qty must be a number or a decimal string.", "invalid_type"),
    (parse_qty, "1e3", 'qty must be a decimal string such as "2" or "0.25".', "invalid"),
    (parse_qty, "1" * 33, 'qty must be a decimal string such as "2" or "0.25".', "invalid"),
    (parse_qty, float("inf"), 'qty must be a decimal string such as "2" or "0.25".', "invalid"),
    (parse_qty, Decimal("NaN"), "qty must be finite.", "invalid"),
    (parse_qty, 0, "qty must be greater than 0.", "min_value"),
    (parse_qty, "-0.5", "qty must be greater than 0.", "min_value"),
    (parse_qty, "1000000.001", "qty must be at most 1000000.", "max_value"),
    (parse_qty, "0.0001", "qty has more than 3 decimal places.", "max_decimal_places"),
    (parse_amount_q, 5.0, "must be an integer amount in minor units.", "invalid_type"),
    (parse_amount_q, False, "must be an integer amount in minor units.", "invalid_type"),
    (parse_amount_q, -1, "must not be negative.", "min_value"),
    (parse_amount_q, 10**12 + 1, "must be at most 1000000000000.", "max_value"),
])
def test_every_refusal_says_why(parse, raw, detail, code):
    with pytest.raises(MoneyError) as exc:
        parse(raw)
    assert (exc.value.detail, str(exc.value), exc.value.code) == (detail, detail, code)


def test_a_negative_qty_where_zero_is_allowed_says_so():
    with pytest.raises(MoneyError) as exc:
        parse_qty("-1", allow_zero=True)
    assert (exc.value.detail, exc.value.code) == ("qty must not be negative.", "min_value")
    assert parse_qty("32." + "0" * 29) == 32  # 32 characters is still a quantity
    assert str(parse_qty("0.000", allow_zero=True)) == "0"
    assert MoneyError("x").code == "invalid"


def test_line_totals_round_half_even_whatever_the_decimal_context_of_the_host():
    import decimal

    with decimal.localcontext(rounding=decimal.ROUND_HALF_UP):
        assert line_total_q(Decimal("0.5"), 1) == 0 and line_total_q(Decimal("1.5"), 1) == 2


def test_a_percentage_rounds_half_even_whatever_the_decimal_context_of_the_host():
    import decimal

    with decimal.localcontext(rounding=decimal.ROUND_HALF_UP):
        # 25 x 10 % is 2.5, 35 x 10 % is 3.5: each goes to the even unit.
        assert (percent_q(25, "0.1"), percent_q(35, Decimal("0.1")), percent_q(-25, "0.1")) == (2, 4, -2)


def test_a_negative_zero_qty_reads_as_zero():
    # Not "-0" in a stored line or a reply.
    raws = ("-0", "-0.0", Decimal("-0"))
    assert [str(parse_qty(raw, allow_zero=True)) for raw in raws] == ["0", "0", "0"]
