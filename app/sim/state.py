"""The simulated broker's book: accounts, holdings, prices and today's executions.

Pure bookkeeping, no I/O: every mutation returns what changed so the server can push it. The
state belongs to the simulator's event loop; other threads reach it through the server's
thread-safe control methods, never directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from app.sim.fields import mask_account
from app.sim.model import Account, Contract, Execution, Holding, Price
from app.sim.pnl import apply_fill

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
# Rough FX to USD so multi-currency accounts have a plausible base-currency total.
DEFAULT_FX_TO_USD: dict[str, Decimal] = {
    "USD": Decimal(1),
    "EUR": Decimal("1.08"),
    "GBP": Decimal("1.27"),
    "CHF": Decimal("1.12"),
    "CAD": Decimal("0.73"),
    "JPY": Decimal("0.0067"),
    "HKD": Decimal("0.128"),
    "AUD": Decimal("0.66"),
}
SUMMARY_TAGS = (
    "AccountType",
    "NetLiquidation",
    "TotalCashValue",
    "GrossPositionValue",
    "EquityWithLoanValue",
    "AvailableFunds",
    "ExcessLiquidity",
    "BuyingPower",
    "InitMarginReq",
    "MaintMarginReq",
)
LEDGER_TAGS = (
    "CashBalance",
    "NetLiquidationByCurrency",
    "UnrealizedPnL",
    "RealizedPnL",
    "ExchangeRate",
)

Key = tuple[str, int]  # (account, conId)
AccountValue = tuple[str, str, str]  # (key, value, currency)


def default_commission(contract: Contract, shares: Decimal) -> Decimal:
    """IB-like fixed rates: stocks $0.005/share (min $1), futures $2.25, options $0.65."""
    if contract.sec_type == "FUT":
        return (Decimal("2.25") * shares).quantize(Decimal("0.01"))
    if contract.sec_type in ("OPT", "FOP"):
        return (Decimal("0.65") * shares).quantize(Decimal("0.01"))
    return max(Decimal(1), (Decimal("0.005") * shares).quantize(Decimal("0.0001")))


def _is_future(contract: Contract) -> bool:
    return contract.sec_type in ("FUT", "FOP")


class SimState:
    """Accounts, holdings keyed by (account, conId), prices by conId, today's executions."""

    def __init__(
        self,
        clock: Callable[[], datetime] | None = None,
        exec_zone: str = "US/Eastern",
    ) -> None:
        self.accounts: dict[str, Account] = {}
        self.holdings: dict[Key, Holding] = {}
        self.prices: dict[int, Price] = {}
        self.executions: dict[str, Execution] = {}  # by execId, in arrival order
        self.contracts: dict[int, Contract] = {}  # every contract seen, by conId
        self.fx_to_usd = dict(DEFAULT_FX_TO_USD)
        self.exec_zone = exec_zone
        # How execDetails words times (app.sim.messages.exec_time_text): "zoned" as current TWS
        # does; "local" (no zone, in exec_zone) or "utc" as other TWS versions do.
        self.exec_time_form = "zoned"
        self.next_order_id = 1
        self.clock = clock or (lambda: datetime.now(UTC))
        self._perm_id = 1_000_000_000
        self._exec_seq = 0xE0D5

    # ------------------------------------------------------------------ accounts
    def add_account(
        self, code: str, base_currency: str = "USD", cash: dict[str, Decimal] | None = None
    ) -> Account:
        """Add (or replace) a managed account."""
        account = Account(code, base_currency, dict(cash or {base_currency: Decimal(100_000)}))
        self.accounts[code] = account
        return account

    def managed_accounts(self) -> list[str]:
        return list(self.accounts)

    # ------------------------------------------------------------------ holdings
    def set_position(
        self,
        account: str,
        contract: Contract,
        quantity: Decimal,
        avg_cost: Decimal | None = None,
        price: Price | None = None,
        *,
        realized_pnl: Decimal = ZERO,
    ) -> Holding:
        """Create or overwrite a holding without a fill (the account need not be managed)."""
        if avg_cost is None:
            base = price if price is not None and price.is_finite() else Decimal(100)
            avg_cost = base * contract.factor
        holding = Holding(account, contract, quantity, avg_cost, realized_pnl)
        self.holdings[(account, contract.con_id)] = holding
        self.contracts[contract.con_id] = contract
        if price is not None or contract.con_id not in self.prices:
            self.prices[contract.con_id] = (
                price if price is not None else avg_cost / contract.factor
            )
        return holding

    def contract(self, con_id: int) -> Contract:
        """A contract seen before (in a holding or a fill)."""
        try:
            return self.contracts[con_id]
        except KeyError:
            raise KeyError(f"unknown conId {con_id}") from None

    def holding(self, account: str, con_id: int) -> Holding:
        try:
            return self.holdings[(account, con_id)]
        except KeyError:
            raise KeyError(f"no position {con_id} in account {mask_account(account)}") from None

    def remove_position(self, account: str, con_id: int) -> Holding:
        """Forget a holding without a fill or a zero row: it just stops being reported."""
        return self.holdings.pop((account, con_id))

    def adjust_quantity(
        self, account: str, con_id: int, quantity: Decimal, avg_cost: Decimal | None = None
    ) -> Holding:
        """A quantity change without a fill (a transfer, a corporate action)."""
        holding = self.holding(account, con_id)
        holding.quantity = quantity
        if avg_cost is not None:
            holding.avg_cost = avg_cost
        return holding

    def split(self, account: str, con_id: int, ratio: Decimal) -> Holding:
        """A `ratio`:1 split: quantity × ratio, avgCost ÷ ratio, the price ÷ ratio too."""
        holding = self.holding(account, con_id)
        holding.quantity *= ratio
        holding.avg_cost /= ratio
        price = self.prices.get(con_id)
        if price is not None and price.is_finite():
            self.prices[con_id] = price / ratio
        return holding

    def holdings_of(self, account: str) -> Iterator[Holding]:
        return (h for h in self.holdings.values() if h.account == account)

    # ------------------------------------------------------------------ prices
    def set_price(self, con_id: int, price: Price) -> list[Holding]:
        """Set a market price; returns the holdings it revalues."""
        self.prices[con_id] = price
        return [h for h in self.holdings.values() if h.contract.con_id == con_id]

    def valuation(self, holding: Holding) -> tuple[Price, Price, Price]:
        """(market price, market value, unrealized P&L); NaN/inf/unset prices propagate."""
        price = self.prices.get(holding.contract.con_id)
        if price is None:
            return None, None, None
        if holding.quantity == 0:
            return price, ZERO, ZERO  # 0 × ±Infinity is undefined: a flat holding is worth 0
        value = holding.quantity * price * holding.contract.factor
        if not price.is_finite():
            return price, value, value
        return price, value, value - holding.quantity * holding.avg_cost

    # ------------------------------------------------------------------ fills
    def _new_exec_id(self, when: datetime) -> str:
        self._exec_seq += 1
        return f"{self._exec_seq:08x}.{int(when.timestamp()):08x}.01.01"

    def fill(
        self,
        account: str,
        contract: Contract,
        shares: Decimal,
        price: Decimal,
        *,
        commission: Decimal | None = None,
        when: datetime | None = None,
        order_ref: str = "",
        client_id: int = 0,
        order_id: int = 0,
    ) -> tuple[Execution, Holding]:
        """Book a fill of `shares` (+ buy, − sell) at `price`; returns it and the new holding."""
        if shares == 0:
            raise ValueError("a fill needs a non-zero quantity")
        key = (account, contract.con_id)
        holding = self.holdings.get(key)
        if holding is None:
            holding = Holding(account, contract, ZERO, ZERO)
            self.holdings[key] = holding
            self.contracts[contract.con_id] = contract
        contract = holding.contract
        size = abs(shares)
        fee = default_commission(contract, size) if commission is None else commission
        outcome = apply_fill(
            holding.quantity, holding.avg_cost, shares, price, contract.factor, fee
        )
        holding.quantity = outcome.quantity
        holding.avg_cost = outcome.avg_cost
        if outcome.realized is not None:
            holding.realized_pnl += outcome.realized
        self.prices.setdefault(contract.con_id, price)
        if account in self.accounts:
            cash = self.accounts[account].cash
            if _is_future(contract):
                # Futures move cash only by fees and realized P&L (marked to market, no premium);
                # a flip's opening share of the fee is ignored.
                delta = -fee if outcome.realized is None else outcome.realized
            else:
                delta = -shares * price * contract.factor - fee
            cash[contract.currency] = cash.get(contract.currency, ZERO) + delta
        when = when or self.clock()
        self._perm_id += 1
        execution = Execution(
            exec_id=self._new_exec_id(when),
            account=account,
            contract=contract,
            side="BOT" if shares > 0 else "SLD",
            shares=size,
            price=price,
            time=when,
            perm_id=self._perm_id,
            order_id=order_id,
            client_id=client_id,
            cum_qty=size,
            avg_price=price,
            order_ref=order_ref,
            commission=fee,
            commission_currency=contract.currency,
            realized_pnl=outcome.realized,
            exchange=contract.primary_exchange or contract.exchange or "SMART",
        )
        self.executions[execution.exec_id] = execution
        logger.debug(
            "fill %s %s %s@%s in %s",
            execution.exec_id,
            execution.side,
            size,
            price,
            mask_account(account),
        )
        return execution, holding

    def correct(
        self, exec_id: str, *, price: Decimal | None = None, commission: Decimal | None = None
    ) -> Execution:
        """Replace an execution by its correction: same id up to the last dot, next revision.

        Only the execution record changes; holdings stay as booked (adjust them explicitly
        if a scenario needs the corrected price reflected in avgCost).
        """
        original = self.executions.pop(exec_id)
        base, _, revision = exec_id.rpartition(".")
        corrected = replace(
            original,
            exec_id=f"{base}.{int(revision, 16) + 1:02x}",
            price=original.price if price is None else price,
            avg_price=original.avg_price if price is None else price,
            commission=original.commission if commission is None else commission,
        )
        self.executions[corrected.exec_id] = corrected
        return corrected

    # ------------------------------------------------------------------ account data
    def _to_base(self, amount: Decimal, currency: str, base: str) -> Decimal:
        rate = self.fx_to_usd.get(currency, Decimal(1)) / self.fx_to_usd.get(base, Decimal(1))
        return amount * rate

    def ledger(self, account: str) -> dict[str, dict[str, Decimal]]:
        """Per currency: cash, market value, unrealized and realized P&L (finite prices only)."""
        acct = self.accounts.get(account)
        currencies: dict[str, dict[str, Decimal]] = {}

        def bucket(currency: str) -> dict[str, Decimal]:
            return currencies.setdefault(
                currency, {"cash": ZERO, "value": ZERO, "unrealized": ZERO, "realized": ZERO}
            )

        if acct is not None:
            for currency, amount in acct.cash.items():
                bucket(currency)["cash"] += amount
        for holding in self.holdings_of(account):
            row = bucket(holding.contract.currency)
            _, value, unrealized = self.valuation(holding)
            if value is not None and value.is_finite() and unrealized is not None:
                # A future's notional is not equity: only its open P&L counts toward NetLiq.
                row["value"] += unrealized if _is_future(holding.contract) else value
                row["unrealized"] += unrealized
            row["realized"] += holding.realized_pnl
        return currencies

    def account_values(self, account: str) -> list[AccountValue]:
        """What reqAccountUpdates / reqAccountUpdatesMulti report, in TWS's (key, value, ccy)."""
        from app.sim.fields import money

        acct = self.accounts.get(account)
        base = acct.base_currency if acct else "USD"
        ledger = self.ledger(account)
        values: list[AccountValue] = [
            ("AccountCode", account, ""),
            ("AccountReady", "true", ""),
            ("AccountType", acct.account_type if acct else "INDIVIDUAL", ""),
        ]
        totals = dict.fromkeys(("cash", "value", "unrealized", "realized"), ZERO)
        gross = ZERO
        for currency, row in ledger.items():
            rate = self._to_base(Decimal(1), currency, base)
            for name in totals:
                totals[name] += row[name] * rate
            gross += abs(row["value"]) * rate
            values += [
                ("Currency", currency, currency),
                ("ExchangeRate", f"{rate:.4f}", currency),
                ("CashBalance", money(row["cash"]), currency),
                ("NetLiquidationByCurrency", money(row["cash"] + row["value"]), currency),
                ("UnrealizedPnL", money(row["unrealized"]), currency),
                ("RealizedPnL", money(row["realized"]), currency),
            ]
        net = totals["cash"] + totals["value"]
        values += [
            ("Currency", base, "BASE"),
            ("ExchangeRate", "1.00", "BASE"),
            ("CashBalance", money(totals["cash"]), "BASE"),
            ("NetLiquidationByCurrency", money(net), "BASE"),
            ("UnrealizedPnL", money(totals["unrealized"]), "BASE"),
            ("RealizedPnL", money(totals["realized"]), "BASE"),
        ]
        for tag, value in self._summary_numbers(net, totals["cash"], gross).items():
            values.append((tag, money(value), base))
        return values

    @staticmethod
    def _summary_numbers(net: Decimal, cash: Decimal, gross: Decimal) -> dict[str, Decimal]:
        init = gross * Decimal("0.25")
        maint = gross * Decimal("0.20")
        return {
            "NetLiquidation": net,
            "TotalCashValue": cash,
            "GrossPositionValue": gross,
            "EquityWithLoanValue": net,
            "AvailableFunds": net - init,
            "ExcessLiquidity": net - maint,
            "BuyingPower": (net - init) * 4,
            "InitMarginReq": init,
            "MaintMarginReq": maint,
        }

    def account_summary(self, account: str, tags: list[str]) -> list[AccountValue]:
        """reqAccountSummary rows for one account: the asked tags, plus `$LEDGER[:ccy|:ALL]`."""
        values = self.account_values(account)
        by_key: dict[tuple[str, str], str] = {(k, c): v for k, v, c in values}
        base = self.accounts[account].base_currency if account in self.accounts else "USD"
        rows: list[AccountValue] = []
        for tag in tags:
            if tag.startswith("$LEDGER"):
                _, _, which = tag.partition(":")
                for key, value, currency in values:
                    if key not in LEDGER_TAGS:
                        continue
                    if (
                        (which == "ALL")
                        or (which == "" and currency == "BASE")
                        or (which == currency)
                    ):
                        rows.append((key, value, currency))
            elif tag == "AccountType":
                rows.append((tag, by_key[("AccountType", "")], ""))
            elif (tag, base) in by_key:
                rows.append((tag, by_key[(tag, base)], base))
        return rows

    def pnl(self, account: str) -> tuple[Decimal, Decimal, Decimal]:
        """(daily, unrealized, realized) for reqPnL; daily here is realized + unrealized."""
        unrealized = realized = ZERO
        acct = self.accounts.get(account)
        base = acct.base_currency if acct else "USD"
        for currency, row in self.ledger(account).items():
            unrealized += self._to_base(row["unrealized"], currency, base)
            realized += self._to_base(row["realized"], currency, base)
        return realized + unrealized, unrealized, realized

    def pnl_single(self, account: str, con_id: int) -> tuple[Decimal, Price, Price, Price, Price]:
        """(position, daily, unrealized, realized, value) for reqPnLSingle."""
        holding = self.holdings.get((account, con_id))
        if holding is None:
            return ZERO, None, None, None, None
        _, value, unrealized = self.valuation(holding)
        daily = None if unrealized is None else unrealized + holding.realized_pnl
        return holding.quantity, daily, unrealized, holding.realized_pnl, value
