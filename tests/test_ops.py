from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from omniman.exceptions import OpRejected, ValidationError
from omniman.money import MAX_SAFE_Q, line_total_q, percent_q
from omniman.ops import (
    Adjustment,
    Catalog,
    IncompleteState,
    Limits,
    OpField,
    OptionGroup,
    State,
    apply_ops,
    check_data_size,
    needs_all_lines,
    option_key,
    options_q,
    parse_ops,
    skus_to_price,
    touched_line_ids,
)
from omniman.registry import define_op

CATALOG = {"COFFEE": 500, "CAKE": 1200}


def _double(view, fields):
    """Double a line's quantity (a custom op for the tests)."""
    line = view["lines"][fields["line_id"]]
    qty = Decimal(line["qty"]) * 2
    if qty > 1000:
        raise OpRejected("too many.", field="line_id", code="too_many")
    return [{"op": "set_qty", "line_id": fields["line_id"], "qty": str(qty)}]


CUSTOM = {"double": define_op("double", _double, fields={"line_id": "line_id"})}


def modify(state, raw_ops, **kwargs):
    """``parse_ops`` then ``apply_ops``: the whole op engine, as the services run it."""
    limits = kwargs.pop("limits", None) or Limits.from_settings()
    custom = kwargs.pop("custom", CUSTOM)
    return apply_ops(state, parse_ops(raw_ops, limits=limits, custom=custom), limits=limits, **kwargs)


def run(state, ops, **kwargs):
    return modify(state, ops, **kwargs)


def error_of(state, ops, **kwargs):
    with pytest.raises(ValidationError) as exc:
        modify(state, ops, **kwargs)
    return exc.value.errors[0]


def add(sku="COFFEE", qty=1, price=500, **extra):
    op = {"op": "add_line", "sku": sku, "qty": qty, **extra}
    if price is not None:
        op["unit_price_q"] = price
    return op


def cart(*ops, **kwargs):
    return run(State(), list(ops), **kwargs)


# -- add_line ---------------------------------------------------------------


def test_add_line_computes_totals_and_server_line_ids():
    s = cart(add(qty=2), add("CAKE", qty="0.5", price=1200, meta={"note": "warm"}))
    assert [line["line_id"] for line in s.items] == ["L1", "L2"]
    assert s.items[0] == {
        "line_id": "L1", "sku": "COFFEE", "qty": "2", "unit_price_q": 500, "line_total_q": 1000, "meta": {},
        "options": [], "adjustments": [],
    }
    assert s.items[1]["qty"] == "0.5" and s.items[1]["meta"] == {"note": "warm"}
    assert s.total_q == 1600
    assert s.pricing == {
        "subtotal_q": 1600, "discounts_q": 0, "taxes_q": 0, "fees_q": 0, "total_q": 1600, "adjustments": []
    }


def test_client_line_id_is_kept_and_server_ids_skip_it():
    s = cart(add(line_id="L1"), add())
    assert [line["line_id"] for line in s.items] == ["L1", "L2"]


def test_line_ids_are_never_reused_after_a_removal():
    s = cart(add(), add())
    s = run(s, [{"op": "remove_line", "line_id": "L2"}, add()])
    assert [line["line_id"] for line in s.items] == ["L1", "L3"]


def test_duplicate_client_line_id_is_refused():
    e = error_of(State(), [add(line_id="A"), add(line_id="A")])
    assert (e.pointer, e.code) == ("/ops/1/line_id", "duplicate")


def test_external_pricing_requires_a_price():
    e = error_of(State(), [add(price=None)])
    assert (e.pointer, e.code) == ("/ops/0/unit_price_q", "required")


def test_internal_pricing_takes_the_catalog_price_and_refuses_a_client_price():
    s = cart(add(price=None, qty=2), pricing_policy="internal", prices=CATALOG)
    assert s.items[0]["unit_price_q"] == 500 and s.total_q == 1000
    e = error_of(State(), [add(price=499)], pricing_policy="internal", prices=CATALOG)
    assert (e.pointer, e.code) == ("/ops/0/unit_price_q", "not_allowed")
    e = error_of(State(), [add("NOPE", price=None)], pricing_policy="internal", prices=CATALOG)
    assert (e.pointer, e.code) == ("/ops/0/sku", "unknown_sku")


@pytest.mark.parametrize(
    ("qty", "code"),
    [(0, "min_value"), ("0.0001", "max_decimal_places"), (1_000_001, "max_value"), (True, "invalid_type"),
     ("abc", "invalid"), (None, "invalid_type")],
)
def test_add_line_qty_rules(qty, code):
    e = error_of(State(), [add(), add(qty=qty)])
    assert (e.pointer, e.code) == ("/ops/1/qty", code)


@pytest.mark.parametrize(
    ("price", "code"),
    [(500.0, "invalid_type"), ("500", "invalid_type"), (True, "invalid_type"), (-1, "min_value"),
     (10**12 + 1, "max_value")],
)
def test_add_line_price_rules(price, code):
    e = error_of(State(), [add(price=price)])
    assert (e.pointer, e.code) == ("/ops/0/unit_price_q", code)


@pytest.mark.parametrize("sku", ["", "a" * 65, "has space", "ção", "a/b", 12, None])
def test_sku_must_match_the_identifier_rule(sku):
    e = error_of(State(), [add(sku=sku)])
    assert e.pointer == "/ops/0/sku"


@pytest.mark.parametrize("sku", ["a", "A" * 64, "x.y:z-1_2"])
def test_sku_edge_cases_accepted(sku):
    assert cart(add(sku=sku)).items[0]["sku"] == sku


@pytest.mark.parametrize("line_id", ["", "b" * 65, "x y"])
def test_line_id_must_match_the_identifier_rule(line_id):
    e = error_of(State(), [add(line_id=line_id)])
    assert e.pointer == "/ops/0/line_id"


@pytest.mark.parametrize("meta", [[], "x", 1, None])
def test_meta_must_be_an_object(meta):
    e = error_of(State(), [add(meta=meta)])
    assert (e.pointer, e.code) == ("/ops/0/meta", "invalid_type")


def test_line_total_over_the_safe_cap_is_refused_at_the_op():
    # 1,000,000 x 10^12 is far above 2^53 - 1.
    e = error_of(State(), [add(qty=1_000_000, price=10**12)])
    assert (e.pointer, e.code) == ("/ops/0", "max_total")


def test_total_over_the_safe_cap_names_the_op_that_crossed_it():
    price = 10**12
    qty = 4000  # 4 * 10^15 per line; the third line crosses 2^53 - 1 (about 9.007 * 10^15)
    e = error_of(State(), [add(qty=qty, price=price), add(qty=qty, price=price), add(qty=qty, price=price)])
    assert (e.pointer, e.code) == ("/ops/2", "max_total")
    s = cart(add(qty=qty, price=price), add(qty=qty, price=price))
    assert s.total_q == 8 * 10**15 <= MAX_SAFE_Q


def test_a_line_or_a_total_of_exactly_the_safe_cap_is_accepted_and_one_more_is_refused_where_it_crosses():
    # 740,991 + 9 x 1000 x 10^12 + 1000 x 7,199,254,000 = 2^53 - 1, on one line.
    options = [{"code": f"O{n}", "qty": 1000, "unit_price_q": 10**12} for n in range(9)]
    options.append({"code": "O9", "qty": 1000, "unit_price_q": 7_199_254_000})
    s = cart(add(price=740_991, options=options))
    assert s.items[0]["line_total_q"] == s.total_q == MAX_SAFE_Q
    # The same sum on two lines; a unit more on the second is refused there, not at a later op.
    s = cart(add(qty=1_000_000, price=9_007_199_254), add(price=740_991))
    assert s.total_q == MAX_SAFE_Q
    e = error_of(State(), [add(qty=1_000_000, price=9_007_199_254), add(price=740_992), add("TEA", price=0)])
    assert (e.pointer, e.code) == ("/ops/1", "max_total")


# -- remove_line / set_qty / replace_sku / set_price --------------------------------


def test_unknown_line_id_points_at_the_field():
    for op in (
        {"op": "remove_line", "line_id": "L9"},
        {"op": "set_qty", "line_id": "L9", "qty": 1},
        {"op": "replace_sku", "line_id": "L9", "sku": "CAKE"},
        {"op": "set_price", "line_id": "L9", "unit_price_q": 1},
    ):
        e = error_of(cart(add()), [op, op])
        assert (e.pointer, e.code) == ("/ops/0/line_id", "unknown_line")


def test_remove_line_then_using_it_again_is_an_unknown_line():
    e = error_of(cart(add()), [{"op": "remove_line", "line_id": "L1"}, {"op": "remove_line", "line_id": "L1"}])
    assert e.pointer == "/ops/1/line_id"


def test_set_qty_changes_the_total_and_zero_removes():
    s = cart(add(), add("CAKE", price=1200))
    s = run(s, [{"op": "set_qty", "line_id": "L1", "qty": "2.5"}])
    assert s.items[0]["qty"] == "2.5" and s.items[0]["line_total_q"] == 1250 and s.total_q == 2450
    s = run(s, [{"op": "set_qty", "line_id": "L1", "qty": 0}])
    assert [line["line_id"] for line in s.items] == ["L2"] and s.total_q == 1200


def test_set_qty_refuses_negative():
    e = error_of(cart(add()), [{"op": "set_qty", "line_id": "L1", "qty": -1}])
    assert (e.pointer, e.code) == ("/ops/0/qty", "min_value")


def test_replace_sku_keeps_the_price_on_external_channels_when_none_is_given():
    s = cart(add(qty=2, price=700, meta={"k": 1}))
    s = run(s, [{"op": "replace_sku", "line_id": "L1", "sku": "TEA"}])
    assert s.items[0] == {
        "line_id": "L1", "sku": "TEA", "qty": "2", "unit_price_q": 700, "line_total_q": 1400, "meta": {"k": 1},
        "options": [], "adjustments": [],
    }
    s = run(s, [{"op": "replace_sku", "line_id": "L1", "sku": "TEA2", "unit_price_q": 100}])
    assert s.items[0]["unit_price_q"] == 100 and s.total_q == 200


def test_replace_sku_on_internal_channels_takes_the_catalog_price():
    s = cart(add(price=None), pricing_policy="internal", prices=CATALOG)
    s = run(s, [{"op": "replace_sku", "line_id": "L1", "sku": "CAKE"}], pricing_policy="internal", prices=CATALOG)
    assert s.items[0]["unit_price_q"] == 1200 and s.total_q == 1200
    e = error_of(
        s, [{"op": "replace_sku", "line_id": "L1", "sku": "COFFEE", "unit_price_q": 1}],
        pricing_policy="internal", prices=CATALOG,
    )
    assert (e.pointer, e.code) == ("/ops/0/unit_price_q", "not_allowed")


def test_set_price_is_for_external_channels_only():
    s = cart(add(qty=3))
    s = run(s, [{"op": "set_price", "line_id": "L1", "unit_price_q": 100}])
    assert s.total_q == 300
    e = error_of(s, [{"op": "set_price", "line_id": "L1", "unit_price_q": 100}],
                 pricing_policy="internal", prices=CATALOG)
    assert (e.pointer, e.code) == ("/ops/0/op", "not_allowed")


# -- set_data -----------------------------------------------------------------


def test_set_data_writes_nested_paths_and_null_deletes_that_key_only():
    s = cart({"op": "set_data", "path": "table.guests", "value": 4},
             {"op": "set_data", "path": "table.name", "value": "12"},
             {"op": "set_data", "path": "note", "value": "x"})
    assert s.data == {"table": {"guests": 4, "name": "12"}, "note": "x"}
    s = run(s, [{"op": "set_data", "path": "table.guests", "value": None}])
    assert s.data == {"table": {"name": "12"}, "note": "x"}
    s = run(s, [{"op": "set_data", "path": "missing.deep", "value": None}])
    assert s.data == {"table": {"name": "12"}, "note": "x"}


def test_set_data_through_a_non_object_is_refused():
    s = cart({"op": "set_data", "path": "note", "value": "x"})
    e = error_of(s, [{"op": "set_data", "path": "note.sub", "value": 1}])
    assert (e.pointer, e.code) == ("/ops/0/path", "not_an_object")


@pytest.mark.parametrize("path", ["", "a..b", "a.b.c.d.e.f", "a b", "a/b", 5, ".a", "a."])
def test_set_data_path_rules(path):
    e = error_of(State(), [{"op": "set_data", "path": path, "value": 1}])
    assert e.pointer == "/ops/0/path"


def test_set_data_five_segments_is_the_maximum():
    s = cart({"op": "set_data", "path": "a.b.c.d.e", "value": 1})
    assert s.data == {"a": {"b": {"c": {"d": {"e": 1}}}}}


def test_data_size_limit_comes_from_settings(settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "MAX_DATA_BYTES": 50}
    cart({"op": "set_data", "path": "a", "value": "x" * 30})
    e = error_of(State(), [{"op": "set_data", "path": "a", "value": "x" * 60}])
    assert (e.pointer, e.code) == ("/ops/0/value", "max_size")


def test_set_data_does_not_touch_the_input_state():
    before = State(data={"a": {"b": 1}})
    after = run(before, [{"op": "set_data", "path": "a.b", "value": 2}])
    assert before.data == {"a": {"b": 1}} and after.data == {"a": {"b": 2}}


# -- merge_lines ----------------------------------------------------------------


def test_merge_lines_merges_equal_sku_price_and_meta_into_the_first():
    s = cart(add(qty=1), add("CAKE", price=1200), add(qty=2), add(qty=1, meta={"milk": "oat"}), add(qty=1, price=450))
    s = run(s, [{"op": "merge_lines"}])
    assert [(line["line_id"], line["qty"]) for line in s.items] == [("L1", "3"), ("L2", "1"), ("L4", "1"), ("L5", "1")]
    assert s.total_q == 1500 + 1200 + 500 + 450


def test_merge_lines_compares_meta_whatever_the_key_order():
    s = cart(add(meta={"a": 1, "b": 2}), add(meta={"b": 2, "a": 1}))
    assert len(run(s, [{"op": "merge_lines"}]).items) == 1


def test_merge_lines_leaves_a_group_unmerged_when_rounding_would_change_the_total():
    # 0.5 x 1 rounds to 0 twice; merged, 1.0 x 1 would be 1: the total would change.
    s = cart(add("A", qty="0.5", price=1), add("A", qty="0.5", price=1), add("B", qty="0.5", price=2),
             add("B", qty="0.5", price=2))
    merged = run(s, [{"op": "merge_lines"}])
    assert merged.total_q == s.total_q == 2
    assert [(line["sku"], line["qty"]) for line in merged.items] == [("A", "0.5"), ("A", "0.5"), ("B", "1")]


def test_merge_lines_refuses_fields():
    e = error_of(cart(add()), [{"op": "merge_lines", "line_id": "L1"}])
    assert (e.pointer, e.code) == ("/ops/0/line_id", "unknown_field")


# -- the list of ops ----------------------------------------------------------------


def test_empty_ops_is_an_error_at_ops():
    e = error_of(State(), [])
    assert (e.pointer, e.code) == ("/ops", "empty")


@pytest.mark.parametrize("raw", [None, {}, "add_line", 1])
def test_ops_must_be_a_list(raw):
    assert error_of(State(), raw).pointer == "/ops"


def test_each_op_must_be_an_object():
    e = error_of(State(), [add(), "add_line"])
    assert (e.pointer, e.code) == ("/ops/1", "invalid_type")


@pytest.mark.parametrize(
    ("op", "pointer", "code"),
    [
        ({"op": "explode"}, "/ops/0/op", "unknown_op"),
        ({"sku": "A"}, "/ops/0/op", "required"),
        ({"op": 3}, "/ops/0/op", "invalid_type"),
        ({"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": 1, "colour": "red"}, "/ops/0/colour",
         "unknown_field"),
        ({"op": "add_line", "sku": "A", "qty": 1, "a/b~c": 1}, "/ops/0/a~1b~0c", "unknown_field"),
        ({"op": "add_line", "qty": 1}, "/ops/0/sku", "required"),
        ({"op": "set_qty", "line_id": "L1"}, "/ops/0/qty", "required"),
        ({"op": "set_data", "path": "a"}, "/ops/0/value", "required"),
    ],
)
def test_op_shape_errors(op, pointer, code):
    e = error_of(State(), [op])
    assert (e.pointer, e.code) == (pointer, code)


def test_ops_per_modify_limit_comes_from_settings(settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "MAX_OPS_PER_MODIFY": 3}
    cart(add(), add(), add())
    e = error_of(State(), [add()] * 4)
    assert (e.pointer, e.code) == ("/ops", "max_length")


def test_lines_per_session_limit_comes_from_settings(settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "MAX_LINES_PER_SESSION": 2}
    s = cart(add(), add())
    e = error_of(s, [{"op": "set_qty", "line_id": "L1", "qty": 2}, add()])
    assert (e.pointer, e.code) == ("/ops/1", "max_lines")


def test_default_limits_match_the_spec():
    assert Limits.from_settings() == Limits(max_ops=100, max_lines=500, max_data_bytes=64 * 1024)


def test_a_failing_op_applies_nothing():
    before = cart(add(), {"op": "set_data", "path": "a", "value": 1})
    snapshot = orjson.dumps(before.as_dict())
    error_of(before, [add("X", qty=5), {"op": "set_data", "path": "a", "value": 2}, {"op": "remove_line",
                                                                                      "line_id": "nope"}])
    assert orjson.dumps(before.as_dict()) == snapshot


def test_modifiers_add_listed_adjustments():
    def ten_off(view):
        return [Adjustment("promo", "10 off", -10)] if view["subtotal_q"] >= 1000 else []

    s = cart(add(qty=2), modifiers=[ten_off])
    assert s.total_q == 990
    assert s.pricing["adjustments"] == [{"code": "promo", "label": "10 off", "kind": "discount", "amount_q": -10}]


def test_parse_ops_returns_typed_ops():
    (op,) = parse_ops([add(qty="1.50")])
    assert op.qty == Decimal("1.5") and op.unit_price_q == 500 and op.index == 0


# -- the op engine against a plain-Python model -------------------------------------

skus = st.sampled_from(["A", "B", "C"])
small_prices = st.sampled_from([0, 1, 3, 250, 999])
fractional_qtys = st.sampled_from(["1", "2", "0.5", "0.333", "1.25", "0.001", "3"])
metas = st.sampled_from([{}, {"x": 1}])
OAT = {"code": "OAT", "qty": 1, "unit_price_q": 150}
SHOTS = {"code": "SHOT", "qty": 2, "unit_price_q": 200}
option_lists = st.sampled_from([[], [OAT], [SHOTS], [OAT, SHOTS], [SHOTS, OAT]])


class OpEngineMachine(RuleBasedStateMachine):
    """Any sequence of modifies keeps total == sum of line totals, each line total is
    round-half-even(qty x price), merge never changes the total, and a rejected modify
    leaves the state byte-for-byte equal."""

    def __init__(self):
        super().__init__()
        self.state = State()
        # line_id -> (sku, qty, price, meta, options)
        self.model: dict[str, tuple[str, Decimal, int, dict, list]] = {}
        self.next_id = 1
        # The stored lines as the line table holds them: line_id -> (position, line).
        self.rows: dict[str, tuple[int, dict]] = {}
        self.next_position = 0

    def apply(self, ops):
        before = orjson.dumps(self.state.as_dict())
        try:
            new = modify(self.state, ops)
        except ValidationError as exc:
            assert orjson.dumps(self.state.as_dict()) == before
            # The partial state fails the same way (None: merge_lines needs every line).
            assert self.partial(ops) in (None, ("error", exc.errors[0].pointer, exc.errors[0].code))  # noqa: PT017
            return None
        assert orjson.dumps(self.state.as_dict()) == before  # the input is never mutated
        # The full state's diff, written to the rows, gives the new list of lines; so
        # does the partial state's (the lines the ops name and the aggregates only).
        assert self.written(new) == new.items
        partial = self.partial(ops)
        if partial is not None:
            assert partial[0] == "ok", partial
            _, result = partial
            assert self.written(result) == new.items
            assert (result.total_q, result.pricing, result.next_line, result.line_count, result.subtotal_q,
                    result.data) == (new.total_q, new.pricing, new.next_line, new.line_count, new.subtotal_q,
                                     new.data)
        self.rows, self.next_position = self.write(new)
        self.state = new
        return new

    def partial(self, ops):
        """Run ``ops`` on the partial state a modify loads; None when they need every line."""
        try:
            parsed = parse_ops(ops, custom=CUSTOM)
        except ValidationError as exc:
            return "error", exc.errors[0].pointer, exc.errors[0].code
        if needs_all_lines(parsed):
            return None
        ids, auto = touched_line_ids(parsed)
        loaded = ids | {f"L{self.state.next_line + n}" for n in range(auto)}
        lines = [line for _, line in sorted(self.rows[i] for i in loaded if i in self.rows)]
        state = State.partial(
            lines, loaded=loaded, line_count=self.state.line_count, subtotal_q=self.state.subtotal_q,
            data=self.state.data, pricing=self.state.pricing, total_q=self.state.total_q,
            next_line=self.state.next_line,
        )
        # Never IncompleteState: the ids the ops may touch are known before the read.
        try:
            return "ok", apply_ops(state, parsed)
        except ValidationError as exc:
            return "error", exc.errors[0].pointer, exc.errors[0].code

    def write(self, new):
        rows = dict(self.rows)
        position = self.next_position
        fresh = {}
        for line_id in new.diff.added:
            fresh[line_id] = position
            position += 1
        for line_id in new.diff.deletes:
            assert line_id in rows
            del rows[line_id]
        for line in new.diff.upserts:
            line_id = line["line_id"]
            assert line_id in fresh or line_id in rows
            rows[line_id] = (fresh[line_id] if line_id in fresh else rows[line_id][0], line)
        return rows, position

    def written(self, new):
        rows, _ = self.write(new)
        return [line for _, line in sorted(rows.values(), key=lambda row: row[0])]

    @rule(sku=skus, qty=fractional_qtys, price=small_prices, meta=metas, options=option_lists)
    def add_line(self, sku, qty, price, meta, options):
        extra = {"options": options} if options else {}
        assert self.apply([add(sku, qty=qty, price=price, meta=meta, **extra)]) is not None
        self.model[f"L{self.next_id}"] = (sku, Decimal(qty), price, meta, options)
        self.next_id += 1

    @precondition(lambda self: self.model)
    @rule(data=st.data(), options=option_lists)
    def set_options(self, data, options):
        line_id = data.draw(st.sampled_from(sorted(self.model)))
        assert self.apply([{"op": "set_options", "line_id": line_id, "options": options}]) is not None
        sku, qty, price, meta, _ = self.model[line_id]
        self.model[line_id] = (sku, qty, price, meta, options)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def double(self, data):
        """The custom op: applied like the set_qty it returns, or refused as a whole."""
        line_id = data.draw(st.sampled_from(sorted(self.model)))
        sku, qty, price, meta, options = self.model[line_id]
        new = self.apply([{"op": "double", "line_id": line_id}])
        assert (new is None) == (qty * 2 > 1000)
        if new is not None:
            self.model[line_id] = (sku, qty * 2, price, meta, options)

    @rule(line_id=st.sampled_from(["A", "L2", "L3", "L9"]), sku=skus, price=small_prices)
    def add_line_with_an_id(self, line_id, sku, price):
        new = self.apply([add(sku, qty=1, price=price, line_id=line_id)])
        assert (new is None) == (line_id in self.model)  # an id in use is a duplicate
        if new is not None:
            self.model[line_id] = (sku, Decimal(1), price, {}, [])
            if line_id.startswith("L"):  # server-made ids move past a client's L<n>
                self.next_id = max(self.next_id, int(line_id[1:]) + 1)

    @rule(data=st.data())
    def remove_and_add_again(self, data):
        """One modify that removes a line and adds one with its id: one upsert, last."""
        if not self.model:
            return
        line_id = data.draw(st.sampled_from(sorted(self.model)))
        assert self.apply([{"op": "remove_line", "line_id": line_id}, add("C", qty=2, price=3, line_id=line_id)])
        del self.model[line_id]
        self.model[line_id] = ("C", Decimal(2), 3, {}, [])

    @precondition(lambda self: self.model)
    @rule(data=st.data(), qty=st.sampled_from(["0", "1", "2.5", "0.125"]))
    def set_qty(self, data, qty):
        line_id = data.draw(st.sampled_from(sorted(self.model)))
        assert self.apply([{"op": "set_qty", "line_id": line_id, "qty": qty}]) is not None
        if Decimal(qty) == 0:
            del self.model[line_id]
        else:
            sku, _, price, meta, options = self.model[line_id]
            self.model[line_id] = (sku, Decimal(qty), price, meta, options)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), price=small_prices)
    def set_price(self, data, price):
        line_id = data.draw(st.sampled_from(sorted(self.model)))
        assert self.apply([{"op": "set_price", "line_id": line_id, "unit_price_q": price}]) is not None
        sku, qty, _, meta, options = self.model[line_id]
        self.model[line_id] = (sku, qty, price, meta, options)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), sku=skus)
    def replace_sku(self, data, sku):
        line_id = data.draw(st.sampled_from(sorted(self.model)))
        assert self.apply([{"op": "replace_sku", "line_id": line_id, "sku": sku}]) is not None
        _, qty, price, meta, options = self.model[line_id]
        self.model[line_id] = (sku, qty, price, meta, options)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def remove_line(self, data):
        line_id = data.draw(st.sampled_from(sorted(self.model)))
        assert self.apply([{"op": "remove_line", "line_id": line_id}]) is not None
        del self.model[line_id]

    @rule()
    def merge_lines(self):
        total = self.state.total_q
        before = {line["line_id"]: line for line in self.state.items}
        assert self.apply([{"op": "merge_lines"}]) is not None
        assert self.state.total_q == total
        kept = {line["line_id"]: line for line in self.state.items}

        def identity(line):
            return line["sku"], line["unit_price_q"], orjson.dumps(line["meta"]), option_key(line["options"])

        for line_id, old in before.items():  # a line merges only into one with the same options
            if line_id not in kept:
                assert any(identity(line) == identity(old) for line in kept.values())
        self.model = {
            line["line_id"]: (line["sku"], Decimal(line["qty"]), line["unit_price_q"], line["meta"], line["options"])
            for line in self.state.items
        }

    @rule(data=st.data())
    def rejected_modify(self, data):
        bad = data.draw(st.sampled_from([
            {"op": "remove_line", "line_id": "NOPE"},
            {"op": "set_qty", "line_id": "NOPE", "qty": 1},
            add(qty="0.0001"),
            add(price=500.0),
            add(qty=1_000_000, price=10**12),
            {"op": "set_data", "path": "a..b", "value": 1},
            add(options=[{"code": "OAT"}]),
            add(options=[OAT, OAT]),
            {"op": "set_options", "line_id": "NOPE", "options": []},
            {"op": "double", "line_id": "NOPE"},
            add(qty=1_000_000, price=10**12, options=[{"code": "X", "qty": 1000, "unit_price_q": 10**12}]),
        ]))
        assert self.apply([add("A", qty=1, price=1), bad]) is None

    @invariant()
    def totals_match_the_model(self):
        items = self.state.items
        assert [line["line_id"] for line in items] == list(self.model)
        for line in items:
            sku, qty, price, meta, options = self.model[line["line_id"]]
            assert (line["sku"], Decimal(line["qty"]), line["unit_price_q"], line["meta"], line["options"]) == (
                sku, qty, price, meta, options)
            assert line["line_total_q"] == line_total_q(qty, price, options_q(options))
            assert line["line_total_q"] <= MAX_SAFE_Q
        assert self.state.total_q == sum(line["line_total_q"] for line in items)
        assert self.state.pricing.get("total_q", 0) == self.state.total_q
        assert (self.state.line_count, self.state.subtotal_q) == (len(items), self.state.total_q)


OpEngineMachine.TestCase.settings = settings(
    max_examples=min(60, settings.default.max_examples), stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_op_engine_against_a_model = OpEngineMachine.TestCase


# -- partial states: only the lines the ops name ------------------------------------


def partial_of(full, ids, **kwargs):
    return State.partial(
        [line for line in full.items if line["line_id"] in ids], loaded=ids, line_count=full.line_count,
        subtotal_q=full.subtotal_q, data=full.data, pricing=full.pricing, total_q=full.total_q,
        next_line=full.next_line, **kwargs,
    )


def test_a_partial_state_keeps_the_aggregates_and_returns_a_net_diff():
    full = cart(add(), add("CAKE", price=1200), add("TEA", price=300))
    s = run(partial_of(full, {"L2", "L3", "L4"}), [
        {"op": "set_qty", "line_id": "L2", "qty": 2}, {"op": "remove_line", "line_id": "L3"}, add("X", price=7),
    ])
    assert (s.line_count, s.subtotal_q, s.total_q, s.next_line) == (3, 500 + 2400 + 7, 2907, 5)
    assert [line["line_id"] for line in s.diff.upserts] == ["L2", "L4"] and s.diff.added == ["L4"]
    assert s.diff.deletes == ["L3"]


def test_a_line_removed_and_added_again_is_one_upsert_that_goes_last():
    full = cart(add(), add())
    s = run(full, [{"op": "remove_line", "line_id": "L1"}, add("CAKE", price=1200, line_id="L1")])
    assert [line["line_id"] for line in s.items] == ["L2", "L1"]
    assert (s.diff.added, s.diff.deletes, len(s.diff.upserts)) == (["L1"], [], 1)


def test_a_partial_state_asks_for_every_line_when_an_op_needs_more():
    full = cart(add(), add())
    for ops in ([{"op": "merge_lines"}], [{"op": "remove_line", "line_id": "L2"}], [add(line_id="L2")]):
        with pytest.raises(IncompleteState):
            apply_ops(partial_of(full, {"L1"}), parse_ops(ops))
    with pytest.raises(IncompleteState):  # a modifier sees every line
        apply_ops(partial_of(full, {"L1"}), parse_ops([add()]), modifiers=[lambda view: []])


def test_a_client_id_of_the_server_form_moves_the_next_server_id_past_it():
    s = cart(add(line_id="L5"), add())
    assert [line["line_id"] for line in s.items] == ["L5", "L6"] and s.next_line == 7


# -- what a client reads when an op is refused: pointer, words and code -------------------

# The built-in ops, then the custom op these tests register (CUSTOM).
OP_NAMES_TEXT = "add_line, remove_line, set_qty, replace_sku, set_price, set_data, merge_lines, set_options, double"
START = [add(), add("CAKE", qty="0.5", price=1200)]


@pytest.mark.parametrize(("ops", "kwargs", "expected"), [
    ("x", {}, ("/ops", "ops must be a list of ops.", "invalid_type")),
    ([], {}, ("/ops", "ops must not be empty.", "empty")),
    ([{"op": "merge_lines"}] * 3, {"limits": Limits(max_ops=2)}, ("/ops", "at most 2 ops per modify.", "max_length")),
    ([add(), 7], {}, ("/ops/1", "each op must be an object.", "invalid_type")),
    ([{"op": "drop"}], {}, ("/ops/0/op", f"unknown op; one of: {OP_NAMES_TEXT}.", "unknown_op")),
    ([{"sku": "A"}], {}, ("/ops/0/op", f"unknown op; one of: {OP_NAMES_TEXT}.", "required")),
    ([{"op": 3}], {}, ("/ops/0/op", f"unknown op; one of: {OP_NAMES_TEXT}.", "invalid_type")),
    ([{"op": "merge_lines", "a/b~": 1}], {}, ("/ops/0/a~1b~0", "unknown field for merge_lines.", "unknown_field")),
    ([{"op": "add_line", "sku": "A"}], {}, ("/ops/0/qty", "qty is required for add_line.", "required")),
    ([{"op": "set_price", "unit_price_q": 1}], {}, ("/ops/0/line_id", "line_id is required for set_price.", "required")),
    ([add(sku="a b")], {}, ("/ops/0/sku", "sku must be 1 to 64 characters of [A-Za-z0-9._:-].", "invalid")),
    ([{"op": "remove_line", "line_id": 1}], {},
     ("/ops/0/line_id", "line_id must be 1 to 64 characters of [A-Za-z0-9._:-].", "invalid")),
    ([add(qty="0")], {}, ("/ops/0/qty", "qty must be greater than 0.", "min_value")),
    ([*START, {"op": "set_qty", "line_id": "L1", "qty": -1}], {}, ("/ops/2/qty", "qty must not be negative.", "min_value")),
    ([add(price=-5)], {}, ("/ops/0/unit_price_q", "unit_price_q must not be negative.", "min_value")),
    ([add(meta=[1])], {}, ("/ops/0/meta", "meta must be an object.", "invalid_type")),
    ([{"op": "set_data", "path": 5, "value": 1}], {},
     ("/ops/0/path", 'path must be a dotted string such as "table.guests".', "invalid_type")),
    ([{"op": "set_data", "path": "a.b.c.d.e.f", "value": 1}], {},
     ("/ops/0/path", "path must be 1 to 5 dot-separated segments of [A-Za-z0-9_-].", "invalid")),
    ([*START, {"op": "set_price", "line_id": "L9", "unit_price_q": 1}], {},
     ("/ops/2/line_id", "no line 'L9' in this session.", "unknown_line")),
    ([add(price=None)], {}, ("/ops/0/unit_price_q", "unit_price_q is required on this channel.", "required")),
    ([add(price=500)], {"pricing_policy": "internal", "prices": CATALOG},
     ("/ops/0/unit_price_q", "this channel prices from its catalog; do not send unit_price_q.", "not_allowed")),
    ([add("TEA", price=None)], {"pricing_policy": "internal", "prices": CATALOG},
     ("/ops/0/sku", "unknown sku 'TEA' in this channel's catalog.", "unknown_sku")),
    ([{"op": "set_data", "path": "a", "value": 1}, {"op": "set_data", "path": "a.b.c", "value": 1}], {},
     ("/ops/1/path", "'a' is not an object.", "not_an_object")),
    ([{"op": "set_data", "path": "a.b", "value": 1}, {"op": "set_data", "path": "a.b.c.d", "value": 1}], {},
     ("/ops/1/path", "'a.b' is not an object.", "not_an_object")),
    ([{"op": "set_data", "path": "n", "value": 2**70}], {}, ("/ops/0/value", "value is not valid JSON.", "invalid")),
    ([{"op": "set_data", "path": "n", "value": "x" * 20}], {"limits": Limits(max_data_bytes=20)},
     ("/ops/0/value", "data would exceed 20 bytes.", "max_size")),
])
def test_every_refusal_names_its_op_and_field_and_says_why(ops, kwargs, expected):
    assert error_of(State(), ops, **kwargs).as_dict() == dict(zip(("pointer", "detail", "code"), expected, strict=True))


def test_data_may_fill_its_limit_exactly_and_deleting_a_missing_key_changes_nothing():
    full = cart({"op": "set_data", "path": "n", "value": "x" * 12}, limits=Limits(max_data_bytes=20))
    assert full.data == {"n": "x" * 12}  # {"n":"xxxxxxxxxxxx"} is 20 bytes
    s = cart({"op": "set_data", "path": "gone", "value": None}, {"op": "set_data", "path": "x.y", "value": None})
    assert s.data == {}
    base = State(data={"keep": {"a": 1}})
    after = run(base, [{"op": "set_data", "path": "keep.b", "value": 2}])
    assert after.data == {"keep": {"a": 1, "b": 2}} and base.data == {"keep": {"a": 1}}  # the input is never touched


def test_a_state_round_trips_through_its_dict():
    s = cart(add(qty=2))
    raw = s.as_dict()
    assert set(raw) == {"items", "data", "pricing", "total_q", "next_line"}
    back = State.from_dict(raw)
    assert back.as_dict() == raw and (back.total_q, back.next_line, back.pricing["total_q"]) == (1000, 2, 1000)
    assert State.from_dict({}).as_dict() == {"items": [], "data": {}, "pricing": {}, "total_q": 0, "next_line": 1}


def test_what_a_partial_state_must_hold_for_a_list_of_ops():
    ops = parse_ops([add(), add(line_id="X1"), {"op": "set_qty", "line_id": "L4", "qty": 1},
                     {"op": "set_data", "path": "a", "value": 1}, add("TEA"),
                     {"op": "replace_sku", "line_id": "L4", "sku": "CAKE"}])
    assert touched_line_ids(ops) == ({"X1", "L4"}, 2)
    # After a client's own L7, the server-made ids go on from L8.
    assert touched_line_ids(parse_ops([add(line_id="L7"), add(), add()])) == ({"L7", "L8", "L9"}, 2)
    assert not needs_all_lines(ops) and needs_all_lines([*ops, *parse_ops([{"op": "merge_lines"}])])
    assert skus_to_price(ops) == {"COFFEE", "TEA", "CAKE"}


# -- options ------------------------------------------------------------------------

GROUPS = {
    "COFFEE": [
        OptionGroup("MILK", {"OAT": 150, "SOY": 150}, max=1),
        OptionGroup("SHOT", {"SHOT": 200}, max=2),
    ],
    "TEA": [OptionGroup("SIZE", {"SMALL": 0, "LARGE": 100}, min=1, max=1)],
}


def internal(*ops, state=None):
    catalog = Catalog(prices={"COFFEE": 500, "CAKE": 1200, "TEA": 300}, groups=dict(GROUPS))
    return run(state or State(), list(ops), pricing_policy="internal", catalog=catalog)


def internal_error(*ops, state=None):
    with pytest.raises(ValidationError) as exc:
        internal(*ops, state=state)
    return exc.value.errors[0]


def test_options_price_a_line_once():
    s = cart(add(qty="1.5", price=333, options=[{"code": "OAT", "unit_price_q": 151}, {"code": "SHOT", "qty": 2,
                                                                                       "unit_price_q": 200}]))
    # round-half-even(1.5 × (333 + 151 + 2 × 200)) = round(1326) ; one rounding per line
    assert s.items[0]["line_total_q"] == 1326
    assert s.items[0]["options"] == [{"code": "OAT", "qty": 1, "unit_price_q": 151},
                                     {"code": "SHOT", "qty": 2, "unit_price_q": 200}]
    assert s.total_q == 1326


def test_internal_pricing_prices_options_from_the_backend():
    s = internal(add(price=None, options=[{"code": "SOY"}, {"code": "SHOT", "qty": 2}]))
    assert s.items[0]["options"] == [{"code": "SOY", "qty": 1, "unit_price_q": 150},
                                     {"code": "SHOT", "qty": 2, "unit_price_q": 200}]
    assert s.total_q == 500 + 150 + 400


@pytest.mark.parametrize(("options", "pointer", "code"), [
    ([{"code": "HONEY"}], "/ops/0/options/0/code", "unknown_option"),
    ([{"code": "OAT"}, {"code": "SOY"}], "/ops/0/options/1/code", "max_options"),
    ([{"code": "SHOT", "qty": 3}], "/ops/0/options/0/qty", "max_options"),
    ([{"code": "OAT", "unit_price_q": 1}], "/ops/0/options/0/unit_price_q", "not_allowed"),
    ([{"code": "OAT"}, {"code": "OAT"}], "/ops/0/options/1/code", "duplicate"),
    ([{"code": "OAT", "qty": 0}], "/ops/0/options/0/qty", "min_value"),
    ([{"code": "OAT", "qty": 1.0}], "/ops/0/options/0/qty", "invalid_type"),
    ([{"code": "OAT", "size": 1}], "/ops/0/options/0/size", "unknown_field"),
    ([{}], "/ops/0/options/0/code", "required"),
    ({"code": "OAT"}, "/ops/0/options", "invalid_type"),
])
def test_a_wrong_option_is_refused_at_its_pointer(options, pointer, code):
    error = internal_error(add(price=None, options=options))
    assert (error.pointer, error.code) == (pointer, code)


def test_a_required_group_must_be_chosen_and_a_sku_without_groups_takes_no_options():
    assert (internal_error(add("TEA", price=None)).pointer,
            internal_error(add("TEA", price=None)).code) == ("/ops/0/options", "required_option")
    assert internal(add("TEA", price=None, options=[{"code": "LARGE"}])).total_q == 400
    assert internal_error(add("CAKE", price=None, options=[{"code": "OAT"}])).code == "unknown_option"


@pytest.mark.parametrize(("sku", "options", "detail"), [
    ("COFFEE", [{"code": "OAT", "unit_price_q": 1}],
     "this channel prices options from its catalog; do not send unit_price_q."),
    ("COFFEE", [{"code": "OAT"}, {"code": "SOY"}], "group 'MILK' takes at most 1 of its options."),
    ("TEA", [], "group 'SIZE' needs at least 1: one of LARGE, SMALL."),
])
def test_a_refused_option_choice_says_why_in_words(sku, options, detail):
    assert internal_error(add(sku, price=None, options=options)).detail == detail


def test_external_pricing_needs_each_option_price():
    error = error_of(State(), [add(options=[{"code": "OAT"}])])
    assert (error.pointer, error.code) == ("/ops/0/options/0/unit_price_q", "required")


def test_set_options_replaces_them_and_other_ops_keep_them():
    s = internal(add(price=None, options=[{"code": "OAT"}]))
    s = internal({"op": "set_options", "line_id": "L1", "options": [{"code": "SHOT"}]},
                 {"op": "set_qty", "line_id": "L1", "qty": 2}, state=s)
    assert s.items[0]["options"] == [{"code": "SHOT", "qty": 1, "unit_price_q": 200}]
    assert s.total_q == 2 * 700
    error = internal_error({"op": "set_options", "line_id": "L1", "options": [{"code": "NOPE"}]}, state=s)
    assert error.pointer == "/ops/0/options/0/code"
    # Swapping to a sku that does not take the line's options is refused at the sku.
    error = internal_error({"op": "replace_sku", "line_id": "L1", "sku": "CAKE"}, state=s)
    assert (error.pointer, error.code) == ("/ops/0/sku", "unknown_option")


def test_lines_with_other_options_never_merge():
    s = cart(add(options=[OAT]), add(options=[OAT]), add(), add(options=[SHOTS, OAT]), add(options=[OAT, SHOTS]))
    s = run(s, [{"op": "merge_lines"}])
    assert [(line["qty"], len(line["options"])) for line in s.items] == [("2", 1), ("1", 0), ("2", 2)]


def test_options_keep_every_total_under_the_cap():
    error = error_of(State(), [add(qty=1_000_000, price=10**12,
                                   options=[{"code": "X", "qty": 1000, "unit_price_q": 10**12}])])
    assert (error.pointer, error.code) == ("/ops/0", "max_total")


# -- adjustments ----------------------------------------------------------------------


def test_adjustments_by_kind_and_level():
    def mods(view):
        line = view["items"][0]["line_id"]
        return [Adjustment("promo", "Promo", -100, kind="discount", line_id=line),
                Adjustment("service", "Service", 50, kind="fee"),
                Adjustment("vat", "VAT", 90, kind="tax")]

    s = cart(add(qty=2), modifiers=[mods])
    assert s.pricing == {"subtotal_q": 1000, "discounts_q": -100, "taxes_q": 90, "fees_q": 50, "total_q": 1040,
                         "adjustments": [{"code": "service", "label": "Service", "kind": "fee", "amount_q": 50},
                                         {"code": "vat", "label": "VAT", "kind": "tax", "amount_q": 90}]}
    assert s.items[0]["adjustments"] == [{"code": "promo", "label": "Promo", "kind": "discount", "amount_q": -100}]
    inclusive = cart(add(qty=2), modifiers=[mods], tax_inclusive=True)
    assert inclusive.total_q == 1000 - 100 + 50 and inclusive.pricing["taxes_q"] == 90


def test_a_later_modifier_sees_the_adjustments_before_it():
    seen = []

    def coupon(view):
        return [Adjustment("c", "c", -percent_q(view["subtotal_q"], "0.1"), kind="discount")]

    def tax(view):
        seen.append(view["discounts_q"])
        return [Adjustment("t", "t", percent_q(view["subtotal_q"] + view["discounts_q"], "0.1"), kind="tax")]

    s = cart(add(price=1005), modifiers=[coupon, tax])
    # −round(100.5) = −100 (half-even), tax round(90.5) = 90 (half-even)
    assert (s.pricing["discounts_q"], s.pricing["taxes_q"], s.total_q) == (-100, 90, 995)
    assert seen == [-100]


@given(
    prices=st.lists(st.integers(0, 10**6), min_size=1, max_size=8),
    qtys=st.lists(st.sampled_from(["1", "0.5", "2.125", "3", "0.001"]), min_size=8, max_size=8),
    rate=st.sampled_from(["0.1", "0.075", "0.2", "0.0825"]),
    discount=st.sampled_from(["0", "0.1", "0.333"]),
    inclusive=st.booleans(),
)
@settings(max_examples=80, deadline=None)
def test_totals_add_up_and_percentages_round_once(prices, qtys, rate, discount, inclusive):
    """total = subtotal + discounts + fees (+ taxes unless inclusive), each line is
    rounded once, and a percentage is rounded once on the amount it applies to."""
    def coupon(view):
        return [Adjustment("c", "c", -percent_q(view["subtotal_q"], discount), kind="discount")]

    def tax(view):
        base = view["subtotal_q"] + view["discounts_q"]
        return [Adjustment("t", "t", percent_q(base, rate), kind="tax")]

    ops = [add(qty=q, price=p) for p, q in zip(prices, qtys, strict=False)]
    s = cart(*ops, modifiers=[coupon, tax], tax_inclusive=inclusive)
    subtotal = sum(line_total_q(Decimal(q), p) for p, q in zip(prices, qtys, strict=False))
    off = -int((Decimal(subtotal) * Decimal(discount)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    taxes = int((Decimal(subtotal + off) * Decimal(rate)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    p = s.pricing
    assert (p["subtotal_q"], p["discounts_q"], p["taxes_q"], p["fees_q"]) == (subtotal, off, taxes, 0)
    assert p["discounts_q"] <= 0
    assert s.total_q == p["total_q"] == subtotal + off + (0 if inclusive else taxes)
    assert s.total_q <= MAX_SAFE_Q


def test_a_total_over_the_cap_from_an_adjustment_is_refused_at_the_last_op():
    def fee(view):
        return [Adjustment("f", "f", MAX_SAFE_Q, kind="fee")]

    error = error_of(State(), [add(), add()], modifiers=[fee])
    assert (error.pointer, error.code) == ("/ops/1", "max_total")


def test_a_total_or_a_sum_of_exactly_the_safe_cap_from_adjustments_is_accepted_and_over_it_says_so():
    def fee(view):
        return [Adjustment("f", "f", MAX_SAFE_Q, kind="fee"), Adjustment("d", "d", -1, kind="discount")]

    s = cart(add(price=1), modifiers=[fee])
    assert (s.total_q, s.pricing["fees_q"]) == (MAX_SAFE_Q, MAX_SAFE_Q)
    error = error_of(State(), [add(price=2)], modifiers=[fee])
    assert (error.pointer, error.code, error.detail) == ("/ops/0", "max_total", f"the total would exceed {MAX_SAFE_Q}.")


def test_a_modifier_sees_the_lines_data_counts_and_every_adjustment_before_it():
    def first(view):
        return [Adjustment("promo", "Promo", -100, kind="discount", line_id="L1"),
                Adjustment("service", "Service", 50, kind="fee"), Adjustment("bag", "Bag", 30, kind="fee"),
                Adjustment("vat", "VAT", 70, kind="tax")]

    seen = []
    s = cart(add(qty=2), add("CAKE", price=1200), {"op": "set_data", "path": "table", "value": 4},
             modifiers=[first, lambda view: seen.append(view) or []])
    assert seen == [{
        "items": [{**line, "adjustments": []} for line in s.items], "data": {"table": 4}, "subtotal_q": 2200,
        "line_count": 2, "tax_inclusive": False,
        "adjustments": [
            {"code": "promo", "label": "Promo", "kind": "discount", "amount_q": -100, "line_id": "L1"},
            {"code": "service", "label": "Service", "kind": "fee", "amount_q": 50},
            {"code": "bag", "label": "Bag", "kind": "fee", "amount_q": 30},
            {"code": "vat", "label": "VAT", "kind": "tax", "amount_q": 70},
        ],
        "discounts_q": -100, "taxes_q": 70, "fees_q": 80,
    }]
    assert (s.pricing["fees_q"], s.total_q) == (80, 2200 - 100 + 80 + 70)


@pytest.mark.parametrize(("adjustment", "error", "message"), [
    (Adjustment("x", "x", True), TypeError, "returned a non-integer amount"),
    (Adjustment("x", "x", 1.0), TypeError, "returned a non-integer amount"),
    (Adjustment("x", "x", 1, kind="gift"), ValueError,
     "returned kind 'gift'; one of ('discount', 'tax', 'fee')"),
    (Adjustment("x", "x", 1, kind="discount"), ValueError, "returned a positive discount"),
    (Adjustment("x", "x", 1, line_id="L9"), ValueError, "adjusted line 'L9', which it cannot see"),
])
def test_a_wrong_adjustment_is_a_host_error_naming_the_modifier(adjustment, error, message):
    def wrong(view):
        return [adjustment]

    with pytest.raises(error) as exc:
        cart(add(), modifiers=[wrong])
    assert str(exc.value) == f"modifier {wrong!r} {message}"


def test_a_line_adjustment_from_a_modifier_that_reads_no_lines_is_a_host_error():
    def blind(view):
        return [Adjustment("x", "x", -1, line_id="L1")]

    with pytest.raises(ValueError, match="adjusted line 'L1', which it cannot see"):
        cart(add(), modifiers=[blind], modifiers_read_lines=False)


# -- custom ops -----------------------------------------------------------------------


def test_a_custom_op_runs_as_the_ops_it_returns_with_errors_at_its_own_pointer():
    s = cart(add(qty=2))
    assert run(s, [{"op": "double", "line_id": "L1"}]).items[0]["qty"] == "4"
    for ops, pointer, code in [
        ([{"op": "double"}], "/ops/0/line_id", "required"),
        ([{"op": "double", "line_id": "L1", "x": 1}], "/ops/0/x", "unknown_field"),
        ([{"op": "double", "line_id": 7}], "/ops/0/line_id", "invalid"),
        ([add(), {"op": "double", "line_id": "NOPE"}], "/ops/1/line_id", "unknown_line"),
        ([{"op": "set_qty", "line_id": "L1", "qty": 900}, {"op": "double", "line_id": "L1"}], "/ops/1/line_id",
         "too_many"),
    ]:
        error = error_of(s, ops)
        assert (error.pointer, error.code) == (pointer, code)


def test_an_unknown_op_error_lists_the_custom_ops():
    error = error_of(State(), [{"op": "nope"}])
    assert "double" in error.detail and "add_line" in error.detail
    error = error_of(State(), [{"op": "double", "line_id": "L1"}], custom={})
    assert error.code == "unknown_op" and "double" not in error.detail


def test_a_custom_op_reads_only_the_lines_it_names():
    ops = parse_ops([{"op": "double", "line_id": "L7"}], custom=CUSTOM)
    assert touched_line_ids(ops) == ({"L7"}, 0) and not needs_all_lines(ops)


# -- pinned by mutation testing (docs/dev/tests.rst) --------------------------------


def test_an_adjustment_without_a_kind_is_a_discount_only_when_negative():
    kinds = [Adjustment("X", "x", amount_q).as_dict()["kind"] for amount_q in (-1, 0, 1)]
    assert kinds == ["discount", "fee", "fee"]
    assert Adjustment("X", "x", -5, kind="tax").as_dict()["kind"] == "tax"


def test_a_catalog_fetches_each_missing_sku_once_even_one_it_does_not_know():
    asked = []

    def fetch(skus):
        asked.append(sorted(skus))
        return {sku: 100 for sku in skus if sku != "GHOST"}, {}

    catalog = Catalog(prices={"COFFEE": 500}, fetch=fetch)
    catalog.ensure({"COFFEE", "GHOST"})
    catalog.ensure({"TEA"})
    catalog.ensure({"GHOST", "TEA", "COFFEE"})
    assert asked == [["GHOST"], ["TEA"]]
    assert catalog.prices == {"COFFEE": 500, "TEA": 100}


def test_a_state_read_from_a_dict_keeps_its_data():
    raw = {"items": [], "data": {"table": 7}, "pricing": {}, "total_q": 0, "next_line": 1}
    assert State.from_dict(raw).data == {"table": 7}


def test_only_the_skus_of_lines_that_set_options_names_are_priced():
    lines = [{"line_id": "L1", "sku": "TEA"}, {"line_id": "L2", "sku": "CAKE"}]
    ops = parse_ops([add("COFFEE"), {"op": "set_options", "line_id": "L1", "options": []}])
    assert skus_to_price(ops, lines) == {"COFFEE", "TEA"}
    assert skus_to_price(parse_ops([add("COFFEE")]), lines) == {"COFFEE"}


@pytest.mark.parametrize(("line", "op"), [
    (add(qty=1, price=10**12), {"op": "set_qty", "line_id": "L1", "qty": 10_000}),
    (add(qty=10_000, price=1), {"op": "set_price", "line_id": "L1", "unit_price_q": 10**12}),
    (add(qty=10_000, price=1), {"op": "replace_sku", "line_id": "L1", "sku": "CAKE", "unit_price_q": 10**12}),
    (add(qty=10_000, price=1), {"op": "set_options", "line_id": "L1", "options": [{"code": "GOLD",
                                                                                    "unit_price_q": 10**12}]}),
])
def test_an_op_that_changes_a_line_over_the_cap_is_refused_at_that_op(line, op):
    # 10,000 x 10^12 is above 2^53 - 1; the op before it moves the op's index.
    e = error_of(cart(line), [{"op": "set_data", "path": "a", "value": 1}, op])
    assert (e.pointer, e.code) == ("/ops/1", "max_total")


def test_set_price_on_an_internal_channel_says_why():
    e = error_of(cart(add()), [{"op": "set_price", "line_id": "L1", "unit_price_q": 100}],
                 pricing_policy="internal", prices=CATALOG)
    assert e.detail == "set_price is for external pricing channels only."


def test_replace_sku_on_an_internal_channel_reprices_the_options_for_the_new_sku():
    catalog = Catalog(prices={"COFFEE": 500, "LATTE": 700, "CAKE": 1200},
                      groups={"COFFEE": GROUPS["COFFEE"], "LATTE": [OptionGroup("MILK", {"OAT": 90})]})
    s = run(State(), [add(price=None, options=[{"code": "OAT"}])], pricing_policy="internal", catalog=catalog)
    s = run(s, [{"op": "replace_sku", "line_id": "L1", "sku": "LATTE"}], pricing_policy="internal", catalog=catalog)
    assert s.items[0]["options"] == [{"code": "OAT", "qty": 1, "unit_price_q": 90}] and s.total_q == 790
    e = error_of(s, [{"op": "replace_sku", "line_id": "L1", "sku": "CAKE"}], pricing_policy="internal",
                 catalog=catalog)
    assert (e.pointer, e.code) == ("/ops/0/sku", "unknown_option")
    assert e.detail == "the line's options do not fit sku 'CAKE': option 'OAT' is not offered for sku 'CAKE'."


def test_merge_lines_keeps_the_meta_and_merges_up_to_the_maximum_qty_exactly():
    half = 500_000  # two halves make MAX_QTY (1,000,000), which is still allowed
    s = cart(add(qty=half, price=1, meta={"k": 1}), add(qty=half, price=1, meta={"k": 1}))
    s = run(s, [{"op": "merge_lines"}])
    assert [(line["qty"], line["meta"]) for line in s.items] == [("1000000", {"k": 1})]


def test_merge_lines_skips_a_group_over_the_maximum_qty_and_still_merges_the_next():
    s = cart(add(qty=600_000, price=1), add(qty=600_000, price=1), add("CAKE"), add("CAKE"))
    s = run(s, [{"op": "merge_lines"}])
    assert [(line["line_id"], line["sku"], line["qty"]) for line in s.items] == [
        ("L1", "COFFEE", "600000"), ("L2", "COFFEE", "600000"), ("L3", "CAKE", "2")]


def test_merge_lines_on_a_partial_state_asks_for_every_line():
    s = cart(add(), add())
    with pytest.raises(IncompleteState) as exc:
        run(partial_of(s, {"L1"}), [{"op": "merge_lines"}])
    assert exc.value.args == ("merge_lines",)


VIEWS_SEEN: list = []


def _wrong(view, fields):
    """Return ops with a refused field: one the custom op also has (qty), one it has not."""
    VIEWS_SEEN.append((sorted(view), len(view)))
    if fields["qty"] == "0":
        return [{"op": "set_qty", "line_id": fields["line_id"], "qty": -1}]
    return [{"op": "set_price", "line_id": fields["line_id"], "unit_price_q": -1}]


def test_an_error_of_a_returned_op_points_at_the_custom_ops_field_of_that_name_or_at_the_op():
    custom = {"wrong": define_op("wrong", _wrong, fields={"line_id": "line_id", "qty": "string"})}
    s = cart(add())
    e = error_of(s, [add(), {"op": "wrong", "line_id": "L1", "qty": "0"}], custom=custom)
    assert (e.pointer, e.code) == ("/ops/1/qty", "min_value")
    e = error_of(s, [add(), {"op": "wrong", "line_id": "L1", "qty": "1"}], custom=custom)
    assert (e.pointer, e.code) == ("/ops/1", "min_value")
    # What the function sees is a read-only mapping of four keys.
    assert VIEWS_SEEN[-1] == (["data", "line_count", "lines", "subtotal_q"], 4)


def test_merge_lines_counts_writes_and_deletes_what_it_merged():
    s = run(cart(add(), add("CAKE")), [add(), {"op": "merge_lines"}])
    assert [(line["line_id"], line["qty"]) for line in s.items] == [("L1", "2"), ("L2", "1")]
    assert s.line_count == 2
    assert ([line["line_id"] for line in s.diff.upserts], s.diff.added, s.diff.deletes) == (["L1"], [], [])
    s = run(State(), [add(), add(), {"op": "merge_lines"}])
    assert (s.line_count, s.diff.added, [line["qty"] for line in s.diff.upserts]) == (1, ["L1"], ["2"])
    s = run(cart(add(), add()), [{"op": "merge_lines"}])
    assert (s.line_count, s.diff.deletes, [line["qty"] for line in s.diff.upserts]) == (1, ["L2"], ["2"])


def _count_lines(view, fields):
    """Put the number of lines it sees, and their skus, in data."""
    lines = view["lines"]
    return [{"op": "set_data", "path": "seen", "value": sorted(line["sku"] for line in lines.values())}]


def test_a_custom_op_that_reads_every_line_sees_them_all_and_needs_a_complete_state():
    custom = {"census": define_op("census", _count_lines, lines="all")}
    s = cart(add(), add("CAKE"))
    assert run(s, [{"op": "census"}], custom=custom).data["seen"] == ["CAKE", "COFFEE"]
    with pytest.raises(IncompleteState) as exc:
        run(partial_of(s, {"L1"}), [{"op": "census"}], custom=custom)
    assert exc.value.args == ("census",)


def test_a_custom_op_reads_each_line_it_names_past_an_optional_one_left_out():
    custom = {"pair": define_op("pair", _count_lines, fields={
        "first": OpField(kind="line_id", required=False), "second": "line_id"})}
    s = cart(add(), add("CAKE"))
    assert run(s, [{"op": "pair", "second": "L2"}], custom=custom).data["seen"] == ["CAKE"]
    e = error_of(s, [{"op": "pair", "second": "NOPE"}], custom=custom)
    assert (e.pointer, e.code, e.detail) == ("/ops/0/second", "unknown_line", "no line 'NOPE' in this session.")


FIELDS_SEEN: list = []


def _every(view, fields):
    """Keep the fields it was given; change nothing."""
    FIELDS_SEEN.append(fields)
    return []


EVERY = {"every": define_op("every", _every, fields={
    "s": OpField(kind="string", max_length=3), "i": OpField(kind="integer", minimum=1, maximum=5),
    "b": "boolean", "o": "object", "l": "line_id", "k": "sku", "q": "qty", "a": "amount_q",
    "opt": OpField(required=False),
})}
GOOD = {"s": "abc", "i": 5, "b": False, "o": {}, "l": "L1", "k": "TEA", "q": "1.5", "a": 100}


def test_a_custom_ops_fields_are_handed_over_checked_and_typed():
    run(cart(add()), [{"op": "every", **GOOD}], custom=EVERY)
    assert FIELDS_SEEN[-1] == {**GOOD, "q": Decimal("1.5"), "opt": None}
    run(cart(add()), [{"op": "every", **GOOD, "s": "a", "i": 1, "opt": "x"}], custom=EVERY)
    assert (FIELDS_SEEN[-1]["s"], FIELDS_SEEN[-1]["i"], FIELDS_SEEN[-1]["opt"]) == ("a", 1, "x")


@pytest.mark.parametrize(("name", "value", "code", "detail"), [
    ("s", None, "required", "s is required for every."),
    ("s", 1, "invalid_type", "s must be a string."),
    ("s", "", "invalid", "s must be 1 to 3 characters."),
    ("s", "abcd", "invalid", "s must be 1 to 3 characters."),
    ("i", True, "invalid_type", "i must be a JSON integer."),
    ("i", 1.0, "invalid_type", "i must be a JSON integer."),
    ("i", 0, "min_value", "i must be at least 1."),
    ("i", 6, "max_value", "i must be at most 5."),
    ("b", 1, "invalid_type", "b must be true or false."),
    ("o", [], "invalid_type", "o must be an object."),
    ("l", "no spaces", "invalid", None),
    ("k", 7, "invalid", None),
    ("q", "0", "min_value", None),
    ("a", -1, "min_value", None),
])
def test_each_kind_of_custom_op_field_is_checked_at_its_pointer(name, value, code, detail):
    raw = {"op": "every", **GOOD}
    if value is None:
        del raw[name]
    else:
        raw[name] = value
    e = error_of(cart(add()), [raw], custom=EVERY)
    assert (e.pointer, e.code) == (f"/ops/0/{name}", code)
    if detail is not None:
        assert e.detail == detail
    else:
        assert e.detail.startswith(name if name in "lk" else ("qty" if name == "q" else "unit_price_q"))


@pytest.mark.parametrize(("options", "pointer", "code", "detail"), [
    ({"code": "OAT"}, "/ops/0/options", "invalid_type", "options must be a list of objects."),
    ([{"code": f"O{n}"} for n in range(21)], "/ops/0/options", "max_length", "at most 20 options per line."),
    (["OAT"], "/ops/0/options/0", "invalid_type", "each option must be an object."),
    ([{"code": "OAT", "size": 1}], "/ops/0/options/0/size", "unknown_field", "unknown field for an option."),
    ([{"qty": 1}], "/ops/0/options/0/code", "required", "code is required for an option."),
    ([{"code": "OAT"}, {"code": "OAT"}], "/ops/0/options/1/code", "duplicate", "option 'OAT' is given twice."),
    ([{"code": "OAT", "qty": True}], "/ops/0/options/0/qty", "invalid_type", "an option's qty must be a JSON integer."),
    ([{"code": "OAT", "qty": 0}], "/ops/0/options/0/qty", "min_value", "an option's qty must be 1 to 1000."),
    ([{"code": "OAT", "qty": 1001}], "/ops/0/options/0/qty", "max_value", "an option's qty must be 1 to 1000."),
])
def test_each_option_rule_says_why_at_its_pointer(options, pointer, code, detail):
    e = error_of(State(), [add(options=options)])
    assert (e.pointer, e.code, e.detail) == (pointer, code, detail)


def test_options_at_their_limits_are_taken():
    s = cart(add(price=0, options=[{"code": f"O{n}", "unit_price_q": 1} for n in range(20)]))
    assert len(s.items[0]["options"]) == 20 and s.total_q == 20
    s = cart(add(price=0, options=[{"code": "OAT", "qty": 1000, "unit_price_q": 1}]))
    assert s.items[0]["options"] == [{"code": "OAT", "qty": 1000, "unit_price_q": 1}] and s.total_q == 1000


def test_a_partial_state_holds_the_sessions_pricing_and_total_as_read():
    full = cart(add(qty=2), add("CAKE"))
    part = partial_of(full, {"L2"})
    assert (part.pricing, part.total_q, part.line_count, part.subtotal_q) == (full.pricing, 1000 + 500, 2, 1500)
    assert part.as_dict() == {**full.as_dict(), "items": [full.items[1]]}


def test_what_a_partial_state_must_hold_for_custom_ops():
    census = define_op("census", _count_lines, lines="all")
    fill = define_op("fill", _count_lines, fields={"line_id": "line_id"}, new_lines=2)
    ops = parse_ops([{"op": "fill", "line_id": "L7"}, add()], custom={"census": census, "fill": fill})
    assert touched_line_ids(ops) == ({"L7"}, 3) and not needs_all_lines(ops)
    assert needs_all_lines(parse_ops([{"op": "census"}], custom={"census": census}))


@pytest.mark.parametrize(("by_op", "invalid", "too_big"), [
    (False, "data must be valid JSON.", "data must be at most 10 bytes."),
    (True, "value is not valid JSON.", "data would exceed 10 bytes."),
])
def test_the_data_size_rule_words_its_refusal_for_a_set_data_op_or_for_data_given_whole(by_op, invalid, too_big):
    check_data_size({"a": "12345"}, 13, "/data", by_op=by_op)  # {"a":"12345"} is 13 bytes
    errors = []
    for data in ({"a": object()}, {"a": "12345678"}):
        with pytest.raises(ValidationError) as exc:
            check_data_size(data, 10, "/data", by_op=by_op)
        e = exc.value.errors[0]
        errors.append((e.pointer, e.code, e.detail))
    assert errors == [("/data", "invalid", invalid), ("/data", "max_size", too_big)]
    with pytest.raises(ValidationError) as exc:
        check_data_size({"a": object()}, 10, "/data")
    assert exc.value.errors[0].detail == "data must be valid JSON."


def test_a_line_added_and_removed_in_one_modify_is_neither_written_nor_deleted():
    s = run(cart(add()), [add("CAKE"), {"op": "remove_line", "line_id": "L2"}])
    assert (s.diff.upserts, s.diff.added, s.diff.deletes) == ([], [], [])


def _bad(view, fields):
    """Misbehave as ``mode`` says."""
    if fields["mode"] == "reject":
        raise OpRejected("not today.", field="elsewhere", code="closed")
    if fields["mode"] == "text":
        return "add_line"
    return [add(qty=10_000, price=10**12)]  # over the total's cap: an error at "/ops/0"


def test_a_custom_ops_refusals_and_its_returned_ops_errors_keep_their_words():
    custom = {"bad": define_op("bad", _bad, fields={"mode": "string"})}
    e = error_of(State(), [{"op": "bad", "mode": "reject"}], custom=custom)
    assert (e.pointer, e.code, e.detail) == ("/ops/0", "closed", "not today.")
    e = error_of(State(), [add(), {"op": "bad", "mode": "over"}], custom=custom)
    assert (e.pointer, e.code, e.detail) == ("/ops/1", "max_total", f"the total would exceed {MAX_SAFE_Q}.")
    with pytest.raises(TypeError, match="custom op 'bad' must return a list of ops, not str"):
        modify(State(), [{"op": "bad", "mode": "text"}], custom=custom)
    e = error_of(cart(add()), [{"op": "double", "line_id": "L1"}, {"op": "double", "line_id": "L1"},
                               {"op": "set_qty", "line_id": "L1", "qty": 600}, {"op": "double", "line_id": "L1"}])
    assert (e.pointer, e.code, e.detail) == ("/ops/3/line_id", "too_many", "too many.")


def test_an_options_code_and_price_are_checked_at_their_pointers():
    e = error_of(State(), [add(options=[{"code": "no spaces", "unit_price_q": 1}])])
    assert (e.pointer, e.code, e.detail.split(" ")[:2]) == ("/ops/0/options/0/code", "invalid", ["code", "must"])
    e = error_of(State(), [add(options=[{"code": "OAT", "unit_price_q": -1}])])
    assert (e.pointer, e.code) == ("/ops/0/options/0/unit_price_q", "min_value")


def _three(view, fields):
    """Return three ops: one more than the tight limit below, far fewer than the settings'."""
    return [{"op": "set_data", "path": f"k{n}", "value": n} for n in range(3)]


def test_a_custom_ops_returned_ops_are_held_to_the_engines_limits_not_the_settings():
    custom = {"three": define_op("three", _three)}
    e = error_of(State(), [{"op": "three"}], custom=custom, limits=Limits(max_ops=2))
    assert (e.pointer, e.code, e.detail) == ("/ops/0", "max_length", "at most 2 ops per modify.")
    s = run(State(), [{"op": "three"}], custom=custom, limits=Limits(max_ops=3))
    assert s.data == {"k0": 0, "k1": 1, "k2": 2}


def test_server_ids_step_past_a_stored_line_that_already_holds_one():
    # Lines written behind the kernel's back: a state read without its next_line.
    line = cart(add()).items[0]
    s = State.from_dict({"items": [line, {**line, "line_id": "L2"}]})
    assert (s.next_line, s.line_count, s.subtotal_q) == (1, 2, 1000)
    s = run(s, [add(), add()])
    assert ([line["line_id"] for line in s.items], s.next_line) == (["L1", "L2", "L3", "L4"], 5)
    # In a partial state the ids it steps over must have been read; else it asks for every line.
    part = State.partial([line], loaded={"L1", "L2"}, line_count=1, subtotal_q=500, data={}, pricing={},
                         total_q=500, next_line=1)
    s = run(part, [add()])
    assert ([line["line_id"] for line in s.items], s.next_line, s.loaded) == (["L1", "L2"], 3, {"L1", "L2"})
    with pytest.raises(IncompleteState):
        run(State.partial([line], loaded={"L1"}, line_count=1, subtotal_q=500, data={}, pricing={},
                          total_q=500, next_line=1), [add()])


def test_a_clients_server_form_id_moves_next_line_even_when_that_line_is_removed_again():
    s = run(State(), [add(line_id="L1"), {"op": "remove_line", "line_id": "L1"}, add()])
    assert ([line["line_id"] for line in s.items], s.next_line) == (["L2"], 3)


def test_a_refused_line_says_why_in_words():
    e = error_of(State(), [add(line_id="A"), add(line_id="A")])
    assert (e.code, e.detail) == ("duplicate", "line 'A' already exists.")
    e = error_of(State(), [add(), add(), add()], limits=Limits(max_lines=2))
    assert (e.pointer, e.code, e.detail) == ("/ops/2", "max_lines", "at most 2 lines per session.")


def test_a_total_over_the_cap_with_no_ops_is_refused_at_the_ops():
    def fee(view):
        return [Adjustment("f", "f", MAX_SAFE_Q + 1, kind="fee")]

    with pytest.raises(ValidationError) as exc:
        apply_ops(State(), [], modifiers=[fee])
    assert (exc.value.errors[0].pointer, exc.value.errors[0].code) == ("/ops", "max_total")


def test_line_adjustments_a_modifier_no_longer_gives_are_cleared_and_written():
    def promo(view):
        return [Adjustment("p", "p", -10, line_id=line["line_id"]) for line in view["items"]
                if Decimal(line["qty"]) >= 2]

    s = cart(add(qty=2), add("CAKE", qty=2), modifiers=[promo])
    assert [len(line["adjustments"]) for line in s.items] == [1, 1]
    s = run(s, [{"op": "set_qty", "line_id": "L1", "qty": 1}, {"op": "set_qty", "line_id": "L2", "qty": 3}],
            modifiers=[promo])
    assert [line["adjustments"] for line in s.items] == [
        [], [{"code": "p", "label": "p", "kind": "discount", "amount_q": -10}]]
    assert [line["line_id"] for line in s.diff.upserts] == ["L1", "L2"]
    # A line no op names is written when its adjustments change, and only then.
    s = run(s, [{"op": "set_data", "path": "n", "value": 1}], modifiers=[promo])
    assert s.diff.upserts == []
    s = run(s, [{"op": "set_data", "path": "n", "value": 3}], modifiers=[lambda view: []])
    assert [line["line_id"] for line in s.diff.upserts] == ["L2"] and s.items[1]["adjustments"] == []
    # A stored line without the key reads as having none: not rewritten for it.
    bare = State.from_dict({"items": [{k: v for k, v in s.items[0].items() if k != "adjustments"}], "next_line": 3})
    assert run(bare, [{"op": "set_data", "path": "n", "value": 4}], modifiers=[lambda view: []]).diff.upserts == []


def test_an_unknown_field_of_a_custom_op_and_a_missing_option_price_say_why_in_words():
    e = error_of(State(), [{"op": "double", "line_id": "L1", "x": 1}])
    assert (e.pointer, e.detail) == ("/ops/0/x", "unknown field for double.")
    e = error_of(State(), [add(options=[{"code": "OAT"}])])
    assert e.detail == "unit_price_q is required for an option on this channel."
