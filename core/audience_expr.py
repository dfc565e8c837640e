"""The audience expression language: a small, safe language over one customer's state.

    stage == 'loyalty' and revenue_in(90d) >= 200 and not ('vip' in tags)
    attributes.company_size >= 200 or country in ['DE', 'AT', 'CH']
    rfm.segment == 'at_risk' and days_since_order > 60

Text is tokenized and parsed here (recursive descent; nothing is ever passed to
``eval`` or ``compile``) and compiled once per config into plain closures
``(state, now) -> value``. Every name, function and operator is checked when the config
is read: an unknown name, a wrong argument or a type mismatch is an
:class:`ExprError` carrying the column (1-based) in the expression. The names and
what each reads are in ``core.audience_names``.

Values: numbers, text, true/false, null, lists (``tags``, ``[...]`` literals) and
durations (``30d``, ``12h``: only as a period argument). A missing value (no order yet,
a profile attribute not set) is ``null``: an ordering comparison with null, or
arithmetic on it, is false/null, while ``== null`` and ``!= null`` test for it.
``attributes.x`` has no declared type: comparing it with a value of another type is
false at run time, never an error.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core import scores
from core.audience_names import (
    ANY,
    BOOL,
    DUR,
    FUNCTIONS,
    LIST,
    NAMES,
    NULL,
    NUM,
    SCORE_NAMES,
    TEXT,
    VOCAB,
    Getter,
    all_tags,
    attribute,
)
from core.durations import DAY
from core.model import CustomerState
from core.segments_config import ScoresConfig

Predicate = Callable[[CustomerState, int], bool]
__all__ = ["BUILT_IN_NAMES", "Env", "ExprError", "Getter", "Predicate", "all_tags"]


class ExprError(ValueError):
    """What is wrong with an expression, and at which column (1-based) of its text."""

    def __init__(self, message: str, column: int) -> None:
        self.message = message
        self.column = column
        super().__init__(f"{message} at column {column}")


@dataclass(frozen=True, slots=True)
class Term:
    """A compiled piece of an expression: its type, its closure and where it starts."""

    type: str
    fn: Getter
    col: int
    const: Any = None
    is_const: bool = False
    vocab: tuple[str, ...] = ()  # the values a text can take (stage, rfm.segment), if fixed
    what: str = ""  # how messages name it


@dataclass(slots=True)
class Env:
    """What names an expression may use besides the built-in ones."""

    scores: ScoresConfig = field(default_factory=ScoresConfig)
    audiences: Mapping[str, Predicate] = field(default_factory=dict)  # named, usable by name
    lead: Getter | None = None  # the lead score, where it can be used
    no_lead: str = "no lead scoring is configured (scores.lead.points)"  # why not, else
    later: frozenset[str] = frozenset()  # audiences defined below the one being compiled


# --- tokens ---------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<dur>\d+(?:\.\d+)?(?:ms|s|m|h|d|w))(?![A-Za-z0-9_])
  | (?P<num>\d+(?:\.\d+)?)(?![A-Za-z0-9_.])
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|==|!=|<|>|\+|-|\*|/|\(|\)|\[|\]|,|\.)
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null", "True", "False", "None"}
_DUR_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": DAY, "w": 7 * DAY}
_DUR = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")

Token = tuple[str, str, int]  # (kind, text, column)


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            if ch.isdigit():
                bad = re.match(r"[0-9.]+[A-Za-z_0-9]*", text[pos:])
                got = bad.group() if bad else ch
                raise ExprError(f"expected a number or a period like 30d, got {got!r}", pos + 1)
            if ch == "=":
                raise ExprError("'=' is not a comparison: write == (or != for 'differs')", pos + 1)
            if ch in "'\"":
                raise ExprError("text without its closing quote", pos + 1)
            if ch == "&" or ch == "|":
                raise ExprError(f"unexpected {ch!r}: write 'and' / 'or'", pos + 1)
            raise ExprError(f"unexpected character {ch!r}", pos + 1)
        kind = m.lastgroup or ""
        if kind != "space":
            word = m.group()
            if kind == "name" and word in _KEYWORDS:
                kind = word.lower() if word in ("True", "False", "None") else word
                kind = {"none": "null"}.get(kind, kind)
            out.append((kind, word, pos + 1))
        pos = m.end()
    out.append(("end", "", len(text) + 1))
    return out


BUILT_IN_NAMES = frozenset(
    {*NAMES, *FUNCTIONS, *SCORE_NAMES, "attributes", "rfm", "consent", *_KEYWORDS}
)


def _score_getter(name: str, cfg: ScoresConfig, env: Env, col: int) -> Getter:
    if name == "clv":
        clv_cfg = cfg.clv
        return lambda s, now: scores.clv(s, now, clv_cfg)
    if name == "lead":
        if env.lead is None:
            raise ExprError(f"'lead' cannot be used here: {env.no_lead}", col)
        return env.lead
    rfm_cfg = cfg.rfm
    index = ("rfm.r", "rfm.f", "rfm.m", "rfm.segment").index(name)
    if index == 3:
        return lambda s, now: (scores.rfm(s, now, rfm_cfg) or (0, 0, 0, "prospect"))[3]

    def level(s: CustomerState, now: int) -> int | str | None:
        value = scores.rfm(s, now, rfm_cfg)
        return None if value is None else value[index]

    return level


# --- operators ----------------------------------------------------------------------------


def _ordered(op: str) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
            return False
        try:
            if op == "<":
                return bool(a < b)
            if op == "<=":
                return bool(a <= b)
            if op == ">":
                return bool(a > b)
            return bool(a >= b)
        except TypeError:  # an attribute of another type than its comparison's
            return False

    return compare


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _member(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if isinstance(b, str):
        return isinstance(a, str) and a in b
    if isinstance(b, list | tuple | set | frozenset):
        return a in b
    return False


def _arith(op: str) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        if not _is_number(a) or not _is_number(b):
            return None
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        return a / b if b else None

    return apply


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# --- the parser -----------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, env: Env) -> None:
        self.text = text
        self.env = env
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, kind: str, what: str) -> Token:
        tok = self.peek()
        if tok[0] != kind:
            raise ExprError(f"expected {what}, got {_shown(tok)}", tok[2])
        return self.take()

    # expr := or
    def parse(self) -> Term:
        if self.peek()[0] == "end":
            raise ExprError("empty expression", 1)
        term = self.or_()
        tok = self.peek()
        if tok[0] != "end":
            raise ExprError(f"expected 'and', 'or' or the end, got {_shown(tok)}", tok[2])
        return term

    def or_(self) -> Term:
        left = self.and_()
        while self.peek()[0] == "or":
            op = self.take()
            right = self.and_()
            left = _logic("or", left, right, op[2])
        return left

    def and_(self) -> Term:
        left = self.not_()
        while self.peek()[0] == "and":
            op = self.take()
            right = self.not_()
            left = _logic("and", left, right, op[2])
        return left

    def not_(self) -> Term:
        tok = self.peek()
        if tok[0] == "not":
            self.take()
            inner = self.not_()
            _want_bool(inner, "after 'not'")
            fn = inner.fn
            return Term(BOOL, lambda s, now: not fn(s, now), tok[2], what="a condition")
        return self.comparison()

    def comparison(self) -> Term:
        left = self.sum_()
        tok = self.peek()
        op = tok[1] if tok[0] == "op" and tok[1] in ("<", "<=", ">", ">=", "==", "!=") else ""
        if tok[0] == "in":
            op = "in"
        elif tok[0] == "not" and self.tokens[self.i + 1][0] == "in":
            self.take()
            op = "not in"
        if not op:
            return left
        self.take()
        right = self.sum_()
        return _compare(op, left, right, tok[2])

    def sum_(self) -> Term:
        left = self.product()
        while self.peek()[0] == "op" and self.peek()[1] in ("+", "-"):
            op = self.take()
            left = _arithmetic(op[1], left, self.product(), op[2])
        return left

    def product(self) -> Term:
        left = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/"):
            op = self.take()
            left = _arithmetic(op[1], left, self.unary(), op[2])
        return left

    def unary(self) -> Term:
        tok = self.peek()
        if tok[0] == "op" and tok[1] == "-":
            self.take()
            inner = self.unary()
            return _arithmetic("-", _const(0, NUM, tok[2]), inner, tok[2])
        return self.atom()

    def atom(self) -> Term:
        tok = self.take()
        kind, word, col = tok
        if kind == "num":
            return _const(float(word) if "." in word else int(word), NUM, col)
        if kind == "dur":
            m = _DUR.fullmatch(word)
            assert m is not None
            return _const(int(float(m.group(1)) * _DUR_UNITS[m.group(2)]), DUR, col)
        if kind == "str":
            return _const(_unquote(word), TEXT, col)
        if kind in ("true", "false"):
            return _const(kind == "true", BOOL, col)
        if kind == "null":
            return _const(None, NULL, col)
        if kind == "op" and word == "(":
            inner = self.or_()
            self.expect_close(")", col)
            return inner
        if kind == "op" and word == "[":
            return self.list_literal(col)
        if kind == "name":
            return self.name(word, col)
        raise ExprError(f"expected a value, a name or '(', got {_shown(tok)}", col)

    def expect_close(self, closer: str, opened: int) -> None:
        tok = self.peek()
        if tok[0] == "op" and tok[1] == closer:
            self.take()
            return
        raise ExprError(
            f"expected {closer!r} to close the one at column {opened}, got {_shown(tok)}", tok[2]
        )

    def list_literal(self, col: int) -> Term:
        items: list[Any] = []
        types: set[str] = set()
        if not (self.peek()[0] == "op" and self.peek()[1] == "]"):
            while True:
                item = self.unary()
                if not item.is_const or item.type not in (NUM, TEXT):
                    raise ExprError("a list holds numbers or quoted text only", item.col)
                items.append(item.const)
                types.add(item.type)
                if self.peek()[0] == "op" and self.peek()[1] == ",":
                    self.take()
                    continue
                break
        self.expect_close("]", col)
        value = tuple(items)
        term = _const(value, LIST, col)
        return Term(LIST, term.fn, col, value, True, what="a list")

    def name(self, word: str, col: int) -> Term:
        dotted = word
        while self.peek()[0] == "op" and self.peek()[1] == ".":
            self.take()
            part = self.expect("name", "a name after '.'")
            dotted += "." + part[1]
        if self.peek()[0] == "op" and self.peek()[1] == "(":
            return self.call(dotted, col)
        return self.resolve(dotted, col)

    def resolve(self, dotted: str, col: int) -> Term:
        if dotted.startswith("attributes."):
            path = dotted.split(".")[1:]
            return Term(ANY, attribute(path), col, what=dotted)
        entry = NAMES.get(dotted)
        if entry is not None:
            return Term(entry[0], entry[1], col, vocab=VOCAB.get(dotted, ()), what=dotted)
        if dotted in SCORE_NAMES:
            typ = TEXT if dotted == "rfm.segment" else NUM
            getter = _score_getter(dotted, self.env.scores, self.env, col)
            return Term(typ, getter, col, vocab=VOCAB.get(dotted, ()), what=dotted)
        audience = self.env.audiences.get(dotted)
        if audience is not None:
            return Term(BOOL, audience, col, what=f"audience {dotted}")
        if dotted in FUNCTIONS:
            raise ExprError(f"{dotted} needs a period, like {dotted}(30d)", col)
        if dotted in self.env.later:
            raise ExprError(
                f"audience '{dotted}' is defined below this one: use only those above", col
            )
        if dotted == "attributes":
            raise ExprError("name a profile attribute, like attributes.company_size", col)
        known = [*NAMES, *SCORE_NAMES, *self.env.audiences, *(f"{f}()" for f in FUNCTIONS)]
        close = difflib.get_close_matches(dotted, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return _raise(f"unknown name '{dotted}'{hint}", col)

    def call(self, fname: str, col: int) -> Term:
        opened = self.take()[2]
        spec = FUNCTIONS.get(fname)
        if spec is None:
            close = difflib.get_close_matches(fname, list(FUNCTIONS), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ExprError(f"unknown function '{fname}'{hint}", col)
        arg = self.or_()
        if not (arg.is_const and arg.type == DUR):
            raise ExprError(f"{fname} takes a period like 30d or 12h", arg.col)
        longest, make = spec
        period = int(arg.const)
        if period <= 0:
            raise ExprError(f"{fname}: the period must be more than 0", arg.col)
        if longest and period > longest:
            raise ExprError(
                f"{fname} sees at most {longest // DAY}d (activity counts are kept 30 days)",
                arg.col,
            )
        self.expect_close(")", opened)
        return Term(NUM, make(period), col, what=f"{fname}(...)")


def _raise(message: str, col: int) -> Term:
    raise ExprError(message, col)


def _unquote(word: str) -> str:
    body = word[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _const(value: Any, typ: str, col: int) -> Term:
    return Term(typ, lambda s, now: value, col, value, True, what=_describe_const(value, typ))


def _describe_const(value: Any, typ: str) -> str:
    if typ == TEXT:
        return repr(value)
    if typ == NULL:
        return "null"
    return str(value)


def _shown(tok: Token) -> str:
    return "the end" if tok[0] == "end" else repr(tok[1])


def _label(term: Term) -> str:
    return f"{term.what} ({term.type})" if term.what and not term.is_const else f"{term.what}"


def _want_bool(term: Term, where: str) -> None:
    if term.type not in (BOOL, ANY):
        raise ExprError(f"expected a condition {where}, got {_label(term)}", term.col)


def _logic(op: str, left: Term, right: Term, col: int) -> Term:
    _want_bool(left, f"before '{op}'")
    _want_bool(right, f"after '{op}'")
    lf, rf = left.fn, right.fn
    if op == "and":
        return Term(BOOL, lambda s, now: bool(lf(s, now)) and bool(rf(s, now)), left.col)
    return Term(BOOL, lambda s, now: bool(lf(s, now)) or bool(rf(s, now)), left.col)


_COMPARABLE = {NUM: {NUM}, TEXT: {TEXT}, DUR: {DUR}, BOOL: {BOOL}, LIST: {LIST}}


def _compare(op: str, left: Term, right: Term, col: int) -> Term:
    lf, rf = left.fn, right.fn
    if op in ("in", "not in"):
        if right.type not in (LIST, TEXT, ANY):
            raise ExprError(
                f"'{op}' needs a list or text on its right, got {_label(right)}", right.col
            )
        if left.type not in (TEXT, NUM, ANY):
            raise ExprError(
                f"'{op}' needs text or a number on its left, got {_label(left)}", left.col
            )
        _check_vocab(left, right)
        if op == "in":
            return Term(BOOL, lambda s, now: _member(lf(s, now), rf(s, now)), left.col)
        return Term(BOOL, lambda s, now: not _member(lf(s, now), rf(s, now)), left.col)
    types = {left.type, right.type}
    if (
        ANY not in types
        and NULL not in types
        and right.type not in _COMPARABLE.get(left.type, set())
    ):
        raise ExprError(f"cannot compare {_label(left)} with {_label(right)} using '{op}'", col)
    if op in ("==", "!="):
        _check_vocab(left, right)
        _check_vocab(right, left)
        if op == "==":
            return Term(BOOL, lambda s, now: _equal(lf(s, now), rf(s, now)), left.col)
        return Term(BOOL, lambda s, now: not _equal(lf(s, now), rf(s, now)), left.col)
    if NULL in types:
        raise ExprError(f"'{op}' with null is never true: test with == null or != null", col)
    if left.type in (BOOL, LIST):
        raise ExprError(f"'{op}' needs numbers or text, got {_label(left)}", col)
    compare = _ordered(op)
    return Term(BOOL, lambda s, now: compare(lf(s, now), rf(s, now)), left.col)


def _check_vocab(name: Term, value: Term) -> None:
    """``stage == 'loyal'`` can never hold: say so, with the closest valid value."""
    if not name.vocab or not value.is_const:
        return
    values = value.const if isinstance(value.const, tuple) else (value.const,)
    for v in values:
        if isinstance(v, str) and v not in name.vocab:
            close = difflib.get_close_matches(v, name.vocab, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ExprError(
                f"{name.what} is never {v!r} (it is one of {', '.join(name.vocab)}){hint}",
                value.col,
            )


def _arithmetic(op: str, left: Term, right: Term, col: int) -> Term:
    for side in (left, right):
        if side.type not in (NUM, ANY):
            raise ExprError(f"'{op}' needs numbers, got {_label(side)}", side.col)
    lf, rf, apply = left.fn, right.fn, _arith(op)
    return Term(NUM, lambda s, now: apply(lf(s, now), rf(s, now)), left.col, what="a number")


def compile_expr(text: str, env: Env | None = None) -> Predicate:
    """``text`` as a closure ``(state, now) -> bool``; raises :class:`ExprError`."""
    term = _Parser(text, env or Env()).parse()
    _want_bool(term, "as the whole expression (a comparison, 'in', and/or/not)")
    fn = term.fn

    def holds(state: CustomerState, now: int) -> bool:
        return bool(fn(state, now))

    return holds if term.type != BOOL else fn


def compile_value(text: str, env: Env | None = None) -> Getter:
    """``text`` as a closure for its value (any type); raises :class:`ExprError`."""
    return _Parser(text, env or Env()).parse().fn
