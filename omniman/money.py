"""Money in integer minor units and quantities as decimals: no float ever touches money."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal

MAX_SAFE_Q = 2**53 - 1  # the largest integer a JavaScript client reads exactly
MAX_UNIT_PRICE_Q = 10**12
MAX_QTY = Decimal(1_000_000)
QTY_PLACES = 3

_ONE = Decimal(1)
# A decimal string as clients write it: digits, an optional fraction, an optional sign.
# No exponent, no spaces, no "NaN" or "Infinity".
_QTY_TEXT_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)\Z")


class MoneyError(ValueError):
    """A value that is not a valid quantity or amount; ``code`` says why."""

    def __init__(self, detail: str, code: str = "invalid") -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


def parse_qty(value: object, *, allow_zero: bool = False) -> Decimal:
    """A quantity from a JSON number or a decimal string: finite, > 0 (or 0 when allowed),
    at most 3 decimal places once trailing zeros are dropped, at most 1,000,000."""
    if isinstance(value, bool) or value is None:
        raise MoneyError("qty must be a number or a decimal string.", "invalid_type")
    if isinstance(value, float):
        # JSON parsers may hand us floats: their shortest repr is the literal the client sent.
        value = repr(value)
    if isinstance(value, (int, Decimal)):
        qty = Decimal(value)
    elif isinstance(value, str):
        if len(value) > 32 or not _QTY_TEXT_RE.match(value):
            raise MoneyError("qty must be a decimal string such as \"2\" or \"0.25\".", "invalid")
        qty = Decimal(value)
    else:
        raise MoneyError("qty must be a number or a decimal string.", "invalid_type")
    if not qty.is_finite():
        raise MoneyError("qty must be finite.", "invalid")
    if qty < 0 or (qty == 0 and not allow_zero):
        raise MoneyError("qty must be greater than 0." if not allow_zero else "qty must not be negative.", "min_value")
    if qty > MAX_QTY:
        raise MoneyError(f"qty must be at most {MAX_QTY}.", "max_value")
    normal = qty.normalize()
    # Finite (checked above), so the exponent is an int, not the "n"/"F" of NaN and Infinity.
    if normal.as_tuple().exponent < -QTY_PLACES:  # type: ignore[operator]
        raise MoneyError(f"qty has more than {QTY_PLACES} decimal places.", "max_decimal_places")
    return normal if normal != 0 else Decimal(0)


def format_qty(qty: Decimal) -> str:
    """The canonical string of a quantity: "2", "0.25", never an exponent."""
    return format(qty.normalize(), "f")


def parse_amount_q(value: object, *, maximum: int = MAX_UNIT_PRICE_Q) -> int:
    """An amount in minor units: a JSON integer (not 500.0, not "500"), 0 ≤ v ≤ maximum."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MoneyError("must be an integer amount in minor units.", "invalid_type")
    if value < 0:
        raise MoneyError("must not be negative.", "min_value")
    if value > maximum:
        raise MoneyError(f"must be at most {maximum}.", "max_value")
    return value


def line_total_q(qty: Decimal, unit_price_q: int, options_q: int = 0) -> int:
    """round-half-even(qty × (unit_price_q + options_q)), in minor units: ``options_q``
    is Σ option ``unit_price_q`` × option ``qty``, so a line is rounded once."""
    return int((qty * (unit_price_q + options_q)).quantize(_ONE, rounding=ROUND_HALF_EVEN))


def percent_q(amount_q: int, rate: Decimal | str) -> int:
    """round-half-even(amount_q × rate), rate a decimal (``"0.1"`` for 10 %): one
    rounding, on the amount the percentage applies to."""
    return int((Decimal(amount_q) * Decimal(rate)).quantize(_ONE, rounding=ROUND_HALF_EVEN))

