"""IB's average-cost bookkeeping: avgCost includes commissions; realized on reducing fills."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from app.sim.pnl import apply_fill

D = Decimal


def test_buy_adds_commission_into_avg_cost() -> None:
    out = apply_fill(D(0), D(0), D(100), D("50"), D(1), D("1"))
    assert (out.quantity, out.avg_cost, out.realized) == (D(100), D("50.01"), None)
    out = apply_fill(out.quantity, out.avg_cost, D(100), D("60"), D(1), D("1"))
    assert out.avg_cost == (D("5001") + D("6001")) / 200


def test_partial_close_realizes_against_the_average_less_commission() -> None:
    out = apply_fill(D(100), D("50.01"), D(-40), D("55"), D(1), D("1"))
    assert out.quantity == 60 and out.avg_cost == D("50.01")
    assert out.realized == (D("55") - D("50.01")) * 40 - 1


def test_short_open_takes_commission_off_the_proceeds_and_cover_realizes() -> None:
    out = apply_fill(D(0), D(0), D(-100), D("100"), D(1), D("1"))
    assert out.avg_cost == D("99.99")
    cover = apply_fill(out.quantity, out.avg_cost, D(100), D("90"), D(1), D("1"))
    assert cover.quantity == 0 and cover.realized == D("998")  # 1000 − both commissions


def test_futures_multiplier_is_in_avg_cost_and_realized() -> None:
    out = apply_fill(D(0), D(0), D(2), D("5000"), D(50), D("4.50"))
    assert out.avg_cost == (D("500000") + D("4.50")) / 2
    close = apply_fill(out.quantity, out.avg_cost, D(-1), D("5010"), D(50), D("2.25"))
    assert close.realized == (D("5010") - out.avg_cost / 50) * 50 - D("2.25")


def test_flip_closes_all_then_opens_the_rest_at_the_fill_price() -> None:
    out = apply_fill(D(100), D("50"), D(-150), D("60"), D(1), D("3"))
    assert out.quantity == -50
    assert out.realized == (D(60) - D(50)) * 100 - D(2)  # 2/3 of the commission closes
    assert out.avg_cost == (D(60) * 50 - D(1)) / 50  # 1/3 opens the short


def test_fractional_quantities_stay_exact() -> None:
    out = apply_fill(D("0.3"), D("310.1"), D("0.7"), D("416"), D(1), D("1"))
    assert out.quantity == D("1.0")


money = st.decimals(min_value=D("0.01"), max_value=D("10000"), places=2)
sizes = st.decimals(min_value=D("0.0001"), max_value=D("1000"), places=4)


@given(price_in=money, price_out=money, size=sizes, fee_in=money, fee_out=money)
def test_round_trip_realizes_proceeds_minus_cost_minus_fees(
    price_in: Decimal, price_out: Decimal, size: Decimal, fee_in: Decimal, fee_out: Decimal
) -> None:
    for side in (1, -1):
        opened = apply_fill(D(0), D(0), size * side, price_in, D(100), fee_in)
        closed = apply_fill(opened.quantity, opened.avg_cost, -size * side, price_out, D(100),
                            fee_out)  # fmt: skip
        assert closed.quantity == 0 and closed.realized is not None
        expected = (price_out - price_in) * size * 100 * side - fee_in - fee_out
        assert abs(closed.realized - expected) < D("0.000001")
