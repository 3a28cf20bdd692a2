"""The simulated broker's book: accounts, holdings, prices and today's executions.

Pure bookkeeping, no I/O: every mutation returns what changed so the server can push it. The
state belongs to the simulator's event loop; other threads reach it through the server's
thread-safe control methods, never directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

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

# Contracts that expire into nothing (or into the underlying) rather than settling in cash.
EXPIRING_TYPES = frozenset({"OPT", "FOP", "WAR"})

Key = tuple[str, int]  # (account, conId)
AccountValue = tuple[str, str, str]  # (key, value, currency)


def default_commission(contract: Contract, shares: Decimal) -> Decimal:
    """IB-like fixed rates: stocks $0.005/share (min $1), futures $2.25, options $0.65."""
    if contract.sec_type == "FUT":
        return (Decimal("2.25") * shares).quantize(Decimal("0.01"))
    if contract.sec_type in ("OPT", "FOP"):
        return (Decimal("0.65") * shares).quantize(Decimal("0.01"))
    return max(Decimal(1), (Decimal("0.005") * shares).quantize(Decimal("0.0001")))


def _expiry_date(expiry: str) -> date | None:
    """lastTradeDateOrContractMonth `YYYYMMDD` (a `YYYYMM` month counts as its last day)."""
    digits = expiry.strip()[:8]
    if not digits.isdigit() or len(digits) not in (6, 8):
        return None
    try:
        year, month = int(digits[:4]), int(digits[4:6])
        if len(digits) == 8:
            return date(year, month, int(digits[6:]))
        following = date(year + month // 12, month % 12 + 1, 1)
        return date.fromordinal(following.toordinal() - 1)
    except ValueError:
        return None


def _rate_text(rate: Decimal) -> str:
    """An `ExchangeRate` value: 1.00 for the base currency, else up to 8 decimals (TWS: 1.02131)."""
    if rate == 1:
        return "1.00"
    return format(rate.quantize(Decimal("0.00000001")).normalize(), "f")


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
        self.day = 0  # the simulated trading day; new_day() moves it on
        # How many days of executions reqExecutions answers (TWS: today's only by default; its
        # API settings can keep up to 7 days — see new_day()).
        self.execution_days = 1

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
            avg_cost = base * contract.value_factor
        holding = Holding(account, contract, quantity, avg_cost, realized_pnl)
        self.holdings[(account, contract.con_id)] = holding
        self.contracts[contract.con_id] = contract
        if price is not None or contract.con_id not in self.prices:
            self.prices[contract.con_id] = (
                price if price is not None else avg_cost / contract.value_factor
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

    def convert(
        self, account: str, con_id: int, new: Contract, per_old_unit: Fraction
    ) -> tuple[Holding, Decimal]:
        """IB moves a holding to a new conId (a reverse split, an ISIN change): the old conId
        stops being reported, `new` holds quantity × per_old_unit with avgCost ÷ it, and a
        reverse split's fractional unit is paid in cash at the market price (IB: "such shares
        will be liquidated for cash", ibkb.interactivebrokers.com/article/2121). Returns the new
        holding and the cash paid. No fill: IB books it as a corporate action (Flex type RS or
        IC, one row per conId: github.com/ib-edavki/ib-edavki/issues/106)."""
        old = self.holdings.pop((account, con_id))
        exact = Fraction(old.quantity) * per_old_unit
        whole = Decimal(int(exact))
        price = self.prices.get(con_id)
        new_price = None
        if price is not None and price.is_finite():
            new_price = price / Decimal(per_old_unit.numerator) * per_old_unit.denominator
        avg_cost = old.avg_cost / Decimal(per_old_unit.numerator) * per_old_unit.denominator
        holding = self.set_position(account, new, whole, avg_cost, new_price)
        fraction = Decimal(exact.numerator) / Decimal(exact.denominator) - whole
        cash = fraction * (new_price or ZERO) * new.value_factor
        if cash and account in self.accounts:
            balances = self.accounts[account].cash
            balances[new.currency] = balances.get(new.currency, ZERO) + cash
        return holding, cash

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
        value = holding.quantity * price * holding.contract.value_factor
        if not price.is_finite():
            return price, value, value
        return price, value, value - holding.quantity * holding.avg_cost

    # ------------------------------------------------------------------ fills
    def _new_exec_id(self, when: datetime) -> str:
        self._exec_seq += 1
        return f"{self._exec_seq:08x}.{int(when.timestamp()):08x}.01.01"

    def _book(self, holding: Holding, execution: Execution) -> None:
        """Apply one execution to its holding and account cash; remember how to undo it."""
        contract = holding.contract
        signed = execution.shares if execution.side == "BOT" else -execution.shares
        fee = execution.commission
        execution.before = (holding.quantity, holding.avg_cost, holding.realized_pnl)
        outcome = apply_fill(
            holding.quantity, holding.avg_cost, signed, execution.price, contract.value_factor, fee
        )
        holding.quantity = outcome.quantity
        holding.avg_cost = outcome.avg_cost
        if outcome.realized is not None:
            holding.realized_pnl += outcome.realized
        execution.realized_pnl = outcome.realized
        if _is_future(contract):
            # Futures move cash only by fees and realized P&L (marked to market, no premium);
            # a flip's opening share of the fee is ignored.
            delta = -fee if outcome.realized is None else outcome.realized
        else:
            delta = -signed * execution.price * contract.value_factor - fee
        execution.cash_delta = delta
        if holding.account in self.accounts:
            cash = self.accounts[holding.account].cash
            cash[contract.currency] = cash.get(contract.currency, ZERO) + delta

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
        withhold_commission: bool = False,
    ) -> tuple[Execution, Holding]:
        """Book a fill of `shares` (+ buy, − sell) at `price`; returns it and the new holding.

        `client_id` 0 with `order_id` 0 is a fill of an order entered in TWS by hand.
        `withhold_commission`: its commissionReport is not sent until release_commission().
        """
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
        self.prices.setdefault(contract.con_id, price)
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
            exchange=contract.primary_exchange or contract.exchange or "SMART",
            commission_pending=withhold_commission,
            day=self.day,
        )
        self._book(holding, execution)
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

    def execution(self, exec_id: str) -> Execution:
        try:
            return self.executions[exec_id]
        except KeyError:
            raise KeyError(f"no execution {exec_id} today") from None

    def release_commission(self, exec_id: str, commission: Decimal | None = None) -> Execution:
        """Let a withheld commissionReport go; `commission` replaces the booked amount.

        A changed amount re-books the fill (IB's avgCost and realized P&L include commissions).
        """
        execution = self.execution(exec_id)
        if not execution.commission_pending:
            raise ValueError(f"the commission of {exec_id} was already reported")
        execution.commission_pending = False
        if commission is not None and commission != execution.commission:
            self._rebook(execution, replace(execution, commission=commission))
            execution = self.executions[exec_id]
        return execution

    def correct(
        self,
        exec_id: str,
        *,
        price: Decimal | None = None,
        shares: Decimal | None = None,
        commission: Decimal | None = None,
        withhold_commission: bool = False,
    ) -> tuple[Execution, Holding]:
        """Replace an execution by its correction: same id up to the last dot, next revision.

        IB: "A correction is indicated by an ExecId which differs from a previous ExecId in only
        the digits after the final period, e.g. an ExecId ending in ".02" would be a correction
        of a previous execution with an ExecId ending in ".01"" (IBApi Execution class docs,
        interactivebrokers.github.io/tws-api/classIBApi_1_1Execution.html). IB does not say
        whether it replaces or adds to the original (ib_insync issue #364 asks); we take the
        reading the docs' word "correction" supports: it replaces it. The holding, its avgCost,
        the account's cash and the realized P&L of this and every later fill of the same
        (account, conId) are re-booked as if the corrected fill had come instead (quantity
        changes made without fills after it are not replayed).
        """
        original = self.execution(exec_id)
        base, _, revision = exec_id.rpartition(".")
        width = max(2, len(revision))
        new_shares = original.shares if shares is None else abs(shares)
        if new_shares == 0:
            raise ValueError("a correction needs a non-zero quantity")
        new_price = original.price if price is None else price
        corrected = replace(
            original,
            exec_id=f"{base}.{int(revision, 16) + 1:0{width}x}",
            shares=new_shares,
            cum_qty=new_shares,
            price=new_price,
            avg_price=new_price,
            commission=original.commission if commission is None else commission,
            commission_pending=withhold_commission,
        )
        holding = self._rebook(original, corrected)
        return corrected, holding

    def _rebook(self, original: Execution, corrected: Execution) -> Holding:
        """Put `corrected` in `original`'s place (same slot in arrival order) and replay."""
        key = (original.account, original.contract.con_id)
        self.executions = {
            (corrected.exec_id if k == original.exec_id else k): (
                corrected if k == original.exec_id else e
            )
            for k, e in self.executions.items()
        }
        # Each execution once: an entry filed under another key (a test's duplicate) is a copy.
        same_key = [
            e
            for k, e in self.executions.items()
            if k == e.exec_id and (e.account, e.contract.con_id) == key
        ]
        at = next(i for i, e in enumerate(same_key) if e is corrected)
        replay = same_key[at:]
        holding = self.holdings.get(key)
        if holding is None:  # closed today and dropped since: bring the row back
            holding = Holding(original.account, original.contract, ZERO, ZERO)
            self.holdings[key] = holding
        if original.before is not None:
            holding.quantity, holding.avg_cost, holding.realized_pnl = original.before
        cash = self.accounts[original.account].cash if original.account in self.accounts else {}
        currency = original.contract.currency
        undo = original.cash_delta + sum(e.cash_delta for e in replay[1:])
        if cash:
            cash[currency] = cash.get(currency, ZERO) - undo
        for execution in replay:
            self._book(holding, execution)
        return holding

    # ------------------------------------------------------------------ days and lifecycle
    def new_day(self) -> list[Holding]:
        """The trading day ends: what TWS shows the next morning.

        Holdings closed today (quantity 0) stop being reported, today's realized P&L resets, and
        executions older than `execution_days` days leave reqExecutions answers. Returns the
        holdings dropped.
        """
        self.day += 1
        dropped = [h for h in self.holdings.values() if h.quantity == 0]
        for holding in dropped:
            del self.holdings[(holding.account, holding.contract.con_id)]
        for holding in self.holdings.values():
            holding.realized_pnl = ZERO
            holding.lagged = None
        self.executions = {
            k: e for k, e in self.executions.items() if e.day > self.day - self.execution_days
        }
        return dropped

    def _today(self) -> date:
        return self.clock().astimezone(ZoneInfo(self.exec_zone)).date()

    def expire(self, account: str, con_id: int, *, zero_row: bool = False) -> Holding:
        """An OPT/FOP/WAR past its expiry date expires worthless: no execution, no cash.

        The holding stops being reported (`zero_row=True`: reported with quantity 0 until
        new_day(), as some IB users saw for expired options — nautilus_trader PR #3305).
        """
        holding = self.holding(account, con_id)
        contract = holding.contract
        if contract.sec_type not in EXPIRING_TYPES:
            raise ValueError(f"{contract.sec_type} {contract.symbol} is not an option or warrant")
        expiry = _expiry_date(contract.expiry)
        if expiry is None or expiry >= self._today():
            raise ValueError(
                f"{contract.local_symbol or contract.symbol} expires {contract.expiry or '?'}, "
                "which is not in the past"
            )
        if zero_row:
            holding.quantity = ZERO
            holding.avg_cost = ZERO
        else:
            del self.holdings[(account, con_id)]
        return holding

    def exercise(
        self, account: str, con_id: int, underlying: Contract, quantity: Decimal | None = None
    ) -> tuple[Holding | None, Holding]:
        """Exercise (a long option) or assignment (a short one), with no execution at all.

        `quantity` contracts (default: all) leave the option position; the underlying moves by
        ± multiplier × quantity at the strike (calls: long → bought, short → sold; puts the
        other way) and cash by the strike amount. Returns (option holding or None, underlying).
        """
        option = self.holding(account, con_id)
        contract = option.contract
        if contract.sec_type not in EXPIRING_TYPES or contract.right not in ("C", "P"):
            raise ValueError(f"{contract.symbol} is not an option")
        held = option.quantity
        count = abs(held) if quantity is None else abs(quantity)
        if count == 0 or count > abs(held):
            raise ValueError(f"cannot exercise {count} of {held}")
        sign = 1 if held > 0 else -1
        direction = sign if contract.right == "C" else -sign
        moved = direction * count * contract.factor
        remaining = held - sign * count
        if remaining == 0:
            del self.holdings[(account, con_id)]
            kept: Holding | None = None
        else:
            option.quantity = remaining
            kept = option
        key = (account, underlying.con_id)
        target = self.holdings.get(key)
        if target is None:
            target = Holding(account, underlying, ZERO, ZERO)
            self.holdings[key] = target
            self.contracts[underlying.con_id] = underlying
        outcome = apply_fill(
            target.quantity, target.avg_cost, moved, contract.strike, underlying.factor, ZERO
        )
        target.quantity, target.avg_cost = outcome.quantity, outcome.avg_cost
        if outcome.realized is not None:
            target.realized_pnl += outcome.realized
        self.prices.setdefault(underlying.con_id, contract.strike)
        if account in self.accounts:
            cash = self.accounts[account].cash
            amount = moved * contract.strike * underlying.factor
            cash[underlying.currency] = cash.get(underlying.currency, ZERO) - amount
        return kept, target

    def set_exchange_rate(self, currency: str, usd_per_unit: Decimal) -> None:
        """How many USD one unit of `currency` is worth (the simulator's FX table)."""
        if usd_per_unit <= 0:
            raise ValueError("an exchange rate must be positive")
        self.fx_to_usd[currency] = usd_per_unit

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
        # Per currency the account holds (cash or positions), TWS's account download carries
        # `ExchangeRate` = units of the base currency per unit of that currency (the base
        # currency itself 1.00), plus `ExchangeRate 1.00 BASE` and `Currency BASE BASE` beside
        # the BASE totals: a recorded TWS download in PyAlgoTrade's IB test fixture
        # (TestEClientSocket.reqAccountUpdates: `ExchangeRate 1.00 BASE`, `1.02131 CHF`,
        # `1.00 USD`). The base currency's code shows only as the currency of the summary values
        # (NetLiquidation, TotalCashValue, ...).
        for currency, row in ledger.items():
            rate = self._to_base(Decimal(1), currency, base)
            for name in totals:
                totals[name] += row[name] * rate
            gross += abs(row["value"]) * rate
            values += [
                ("Currency", currency, currency),
                ("ExchangeRate", _rate_text(rate), currency),
                ("CashBalance", money(row["cash"]), currency),
                ("NetLiquidationByCurrency", money(row["cash"] + row["value"]), currency),
                ("UnrealizedPnL", money(row["unrealized"]), currency),
                ("RealizedPnL", money(row["realized"]), currency),
            ]
        # The ledger (CashBalance, NetLiquidationByCurrency, ...) comes per currency and once
        # more as BASE; the account totals (NetLiquidation, TotalCashValue, ...) once, in the
        # base currency's code: IBKR API docs "Account Summary" (the `$LEDGER` tags give
        # "CashBalance and TotalCashBalance for every currency separately"), and a recorded
        # reqAccountUpdatesMulti answer (`NetLiquidation,1000414.50,USD` beside its -C/-S
        # segment rows: github.com/erdewit/ib_insync/issues/93). NetLiq = cash + positions'
        # value (futures: their open P&L), the AccountSummaryTags definition ("total cash value
        # + stock value + options value + bond value").
        net = totals["cash"] + totals["value"]
        values += [
            ("Currency", "BASE", "BASE"),
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
