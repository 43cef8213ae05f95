"""Constrained decoding: a character-level automaton per encoding, walked over the vocabulary.

Each encoding's valid answers for a host form a small deterministic automaton over characters
(:class:`SequentialAutomaton` for ``cif`` and ``sites``, :class:`SparseAutomaton` for ``sparse``).
A state knows which characters may come next: a pristine coordinate is one forced character at a
time; a symbol is one of the site's pristine element, its allowed new species or ``VAC``; a sparse
site index must exceed the previous one (so no site is changed twice and the canonical sorted order
is the only one) and leave room for ``min_defects``; a defect budget ``max_defects`` bounds changes.

:class:`TokenConstraint` turns automaton states into allowed token ids for any tokenizer: it walks a
trie of the vocabulary's token texts along the characters the state allows, so multi-character
tokens (``" VAC"``, Llama-3's ``"0.0000"``) are allowed exactly when all their characters are.
Results are memoised per state. EOS is allowed only in the final state.

Why our own automaton rather than xgrammar or llguidance: the language of valid answers is tiny and
fixed per (host, encoding, budget), the ordering rule of ``sparse`` (strictly increasing sites)
is not a regular expression of manageable size, xgrammar pulls triton/CUDA wheels and llguidance a
Rust extension that are not in the CPU environment, and a pure-Python automaton over a 562-token
vocabulary costs microseconds per step (memoised). vLLM uses the equivalent regular expression
(:mod:`llm.vllm_backend`) through its own structured-output back end.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hts.errors import ConfigError
from hts.hosts import Host
from llm.encodings import (
    SITES_CLOSE,
    SITES_OPEN,
    SPARSE_CLOSE,
    SPARSE_OPEN,
    check_allowed,
    check_encoding,
    coord_strings,
    site_options,
    site_width,
)

logger = logging.getLogger(__name__)

State = tuple
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class _Budget:
    """Defect-count bounds shared by the automata: ``min_defects <= changes <= max_defects``."""

    def __init__(self, host: Host, max_defects: int | None, min_defects: int, allowed: np.ndarray | None) -> None:
        self.host = host
        self.allowed = check_allowed(host, allowed)
        self.defectable: np.ndarray = np.asarray(self.allowed.any(axis=1), dtype=bool)
        self.n = host.n_sites
        # suffix[s] = defectable sites in [s, n)
        self.suffix = np.concatenate([np.cumsum(self.defectable[::-1])[::-1], [0]]).astype(int)
        self.max_defects = self.n if max_defects is None else int(max_defects)
        self.min_defects = int(min_defects)
        if self.max_defects < 0 or self.min_defects < 0:
            raise ConfigError("max_defects and min_defects must be >= 0")
        if self.min_defects > min(self.max_defects, int(self.suffix[0])):
            raise ConfigError(
                f"min_defects={self.min_defects} is above max_defects={self.max_defects} or the "
                f"{int(self.suffix[0])} sites of {host.key} that can change"
            )


class SequentialAutomaton(_Budget):
    """``head + sum_i(pre_i + symbol_i + post_i) + tail`` over every site in order (``cif``, ``sites``).

    States: ``(0, i, count, k)`` inside the literal before site ``i`` (``i == n``: before the end),
    ``(1, i, count, partial)`` inside site ``i``'s symbol, ``(2,)`` complete.
    """

    def __init__(
        self,
        host: Host,
        encoding: str,
        max_defects: int | None = None,
        min_defects: int = 0,
        allowed: np.ndarray | None = None,
    ) -> None:
        super().__init__(host, max_defects, min_defects, allowed)
        self.encoding = encoding
        n = self.n
        if encoding == "sites":
            head, pre, post, tail = SITES_OPEN, [" "] * n, [""] * n, " " + SITES_CLOSE
        elif encoding == "cif":
            head, pre, tail = "", [""] * n, ""
            post = [f" {c}\n" for c in coord_strings(host)]
        else:
            raise ConfigError(f"SequentialAutomaton does not handle encoding {encoding!r}")
        # literal before site i: head + pre_0, post_{i-1} + pre_i, post_{n-1} + tail
        self.literals = [head + pre[0]] + [post[i - 1] + pre[i] for i in range(1, n)] + [post[n - 1] + tail]
        if any(not lit for lit in self.literals[1:]):
            raise ConfigError("symbols must be separated by non-letter text")
        self.options = [site_options(host, i, self.allowed) for i in range(n)]
        self.pristine = host.site_species

    def _norm(self, i: int, count: int, k: int) -> State:
        lit = self.literals[i]
        if k < len(lit):
            return (0, i, count, k)
        return (1, i, count, "") if i < self.n else (2,)

    def start(self) -> State:
        return self._norm(0, 0, 0)

    def is_final(self, state: State) -> bool:
        return state[0] == 2

    def _symbols(self, i: int, count: int) -> tuple[str, ...]:
        can_keep = count + int(self.suffix[i + 1]) >= self.min_defects
        can_change = count < self.max_defects
        pristine = self.pristine[i]
        return tuple(o for o in self.options[i] if (can_keep if o == pristine else can_change))

    def next_chars(self, state: State) -> Iterable[str]:
        if state[0] == 0:
            return (self.literals[state[1]][state[3]],)
        if state[0] == 1:
            _, i, count, partial = state
            syms = self._symbols(i, count)
            chars = {s[len(partial)] for s in syms if len(s) > len(partial) and s.startswith(partial)}
            if partial in syms:
                chars.add(self.literals[i + 1][0])
            return chars
        return ()

    def step(self, state: State, ch: str) -> State | None:
        phase = state[0]
        if phase == 0:
            _, i, count, k = state
            return self._norm(i, count, k + 1) if self.literals[i][k] == ch else None
        if phase == 1:
            _, i, count, partial = state
            syms = self._symbols(i, count)
            grown = partial + ch
            if ch in _LETTERS and any(s.startswith(grown) for s in syms):
                return (1, i, count, grown)
            if partial in syms and self.literals[i + 1][0] == ch:
                return self._norm(i + 1, self._tally(count, i, partial), 1)
        return None

    def _tally(self, count: int, i: int, symbol: str) -> int:
        """The defect tally after site ``i`` took ``symbol``."""
        return count + (symbol != self.pristine[i])


class SparseAutomaton(_Budget):
    """``<defects>( ddd:SYM)* </defects>`` with strictly increasing sites and allowed symbols.

    States: ``(0, k)`` in the opening tag; ``(1, prev, count)`` expecting a space; ``(2, prev, count)``
    after a space (a digit or the closing tag); ``(3, prev, count, digits)`` in a site index;
    ``(4, site, count)`` expecting ``:``; ``(5, site, count, partial)`` in a symbol;
    ``(6, k)`` in the closing tag; ``(7,)`` complete.
    """

    def __init__(
        self, host: Host, max_defects: int | None = None, min_defects: int = 0, allowed: np.ndarray | None = None
    ) -> None:
        super().__init__(host, max_defects, min_defects, allowed)
        self.encoding = "sparse"
        self.width = site_width(host)
        self.cum = np.concatenate([[0], np.cumsum(self.defectable)]).astype(int)
        # smax[need]: largest defectable site s with suffix[s + 1] >= need (-1 if none)
        self.smax = []
        for need in range(self.min_defects + 1):
            ok = [s for s in range(self.n) if self.defectable[s] and self.suffix[s + 1] >= need]
            self.smax.append(max(ok) if ok else -1)
        self.new_species = [site_options(host, s, self.allowed)[1:] for s in range(self.n)]

    def start(self) -> State:
        return (0, 0)

    def is_final(self, state: State) -> bool:
        return state[0] == 7

    # The defect tally of a state is a count here and the remaining quotas in the composition
    # automaton; these hooks are what the two differ in.
    def _can_close(self, count: Any) -> bool:
        return bool(count >= self.min_defects)

    def _site_symbols(self, site: int, count: Any) -> tuple[str, ...]:
        return self.new_species[site]  # type: ignore[no-any-return]

    def _tally(self, count: Any, site: int, symbol: str) -> Any:
        return count + 1

    def _start_tally(self) -> Any:
        return 0

    def _site_range_ok(self, prev: int, count: int, lo: int, hi: int) -> bool:
        """Is some site in [lo, hi] a valid next defect after ``prev`` with ``count`` so far?"""
        if count >= self.max_defects:
            return False
        need = max(self.min_defects - count - 1, 0)
        a, b = max(lo, prev + 1), min(hi, self.n - 1, self.smax[min(need, len(self.smax) - 1)])
        return a <= b and self.cum[b + 1] - self.cum[a] > 0

    def _prefix_ok(self, prev: int, count: int, digits: str) -> bool:
        scale = 10 ** (self.width - len(digits))
        lo = int(digits) * scale
        return self._site_range_ok(prev, count, lo, lo + scale - 1)

    def next_chars(self, state: State) -> Iterable[str]:
        phase = state[0]
        if phase == 0:
            return (SPARSE_OPEN[state[1]],)
        if phase == 1:
            return (" ",)
        if phase in (2, 3):
            prev, count = state[1], state[2]
            digits = state[3] if phase == 3 else ""
            out = [d for d in "0123456789" if self._prefix_ok(prev, count, digits + d)]
            if phase == 2 and self._can_close(count):
                out.append("<")
            return out
        if phase == 4:
            return (":",)
        if phase == 5:
            _, site, count, partial = state
            syms = self._site_symbols(site, count)
            chars = {s[len(partial)] for s in syms if len(s) > len(partial) and s.startswith(partial)}
            if partial in syms:
                chars.add(" ")
            return chars
        if phase == 6:
            return (SPARSE_CLOSE[state[1]],)
        return ()

    def step(self, state: State, ch: str) -> State | None:
        phase = state[0]
        if phase == 0:
            k = state[1]
            if SPARSE_OPEN[k] != ch:
                return None
            return (0, k + 1) if k + 1 < len(SPARSE_OPEN) else (1, -1, self._start_tally())
        if phase == 1:
            return (2, state[1], state[2]) if ch == " " else None
        if phase in (2, 3):
            prev, count = state[1], state[2]
            if phase == 2 and ch == "<":
                return (6, 1) if self._can_close(count) else None
            if not ch.isdigit() or not ch.isascii():
                return None
            digits = (state[3] if phase == 3 else "") + ch
            if not self._prefix_ok(prev, count, digits):
                return None
            return (3, prev, count, digits) if len(digits) < self.width else (4, int(digits), count)
        if phase == 4:
            return (5, state[1], state[2], "") if ch == ":" else None
        if phase == 5:
            _, site, count, partial = state
            syms = self._site_symbols(site, count)
            grown = partial + ch
            if ch in _LETTERS and any(s.startswith(grown) for s in syms):
                return (5, site, count, grown)
            if ch == " " and partial in syms:
                return (2, site, self._tally(count, site, partial))
            return None
        if phase == 6:
            k = state[1]
            if SPARSE_CLOSE[k] != ch:
                return None
            return (6, k + 1) if k + 1 < len(SPARSE_CLOSE) else (7,)
        return None


def composition_counts(host: Host, composition: Mapping[str, int]) -> tuple[int, ...]:
    """Exact defect counts per rule of ``host`` (in the host's rule order) from ``{rule name: count}``;
    rules not named get 0. :class:`ConfigError` for unknown rules, negative or non-integer counts, or
    an empty composition."""
    names = [r.name for r in host.rules]
    unknown = [k for k in composition if k not in names]
    if unknown:
        raise ConfigError(
            f"composition names defect type(s) {', '.join(map(repr, unknown))} that {host.key} does not have; "
            f"its types are {', '.join(names)}"
        )
    out = []
    for name in names:
        v = composition.get(name, 0)
        try:
            whole = not isinstance(v, bool) and float(v).is_integer() and int(v) >= 0
        except (TypeError, ValueError):
            whole = False
        if not whole:
            raise ConfigError(f"composition count of {name!r} must be a whole number >= 0, got {v!r}")
        out.append(int(v))
    if sum(out) < 1:
        raise ConfigError(f"a composition needs at least one defect, got {dict(composition)!r}")
    return tuple(out)


class _Quotas:
    """Exact defect counts per type (a composition): which symbols keep the rest attainable.

    The tally of a state is the tuple of counts still to place. A site may take a defect of type
    ``t`` when ``t`` has quota left and, afterwards, every element's remaining quota fits into that
    element's sites further on. Because every site of an element accepts every allowed type of that
    element (checked), that condition is exact (Hall's theorem): the decoder never walks into a
    dead end, and every answer has the composition.
    """

    def _init_quotas(self, host: Host, allowed: np.ndarray, quotas: Sequence[int]) -> None:
        if len(quotas) != len(host.rules):
            raise ConfigError(f"a composition of {host.key} has {len(host.rules)} counts, got {len(quotas)}")
        self.quotas = tuple(int(q) for q in quotas)
        elements = list(dict.fromkeys(r.element for r in host.rules))
        self.rule_group = [elements.index(r.element) for r in host.rules]
        self.rule_code = [host.code_of(r.new_species) for r in host.rules]
        self.rule_species = [r.new_species for r in host.rules]
        n = host.n_sites
        self.site_group = np.full(n, -1, dtype=int)
        for g, el in enumerate(elements):
            self.site_group[host.site_species_array == el] = g
        for t, q in enumerate(self.quotas):
            if q == 0:
                continue
            sites = host.site_species_array == host.rules[t].element
            ok = allowed[sites, self.rule_code[t]]
            if not ok.any():
                raise ConfigError(f"the composition asks for {q} x {host.rules[t].name}, which is not allowed here")
            if not ok.all():
                raise ConfigError(
                    f"a composition needs {host.rules[t].name} allowed on every {host.rules[t].element} site"
                )
        # group_suffix[g][s] = sites of group g in [s, n)
        self.group_suffix = [
            np.concatenate([np.cumsum((self.site_group == g)[::-1])[::-1], [0]]).astype(int)
            for g in range(len(elements))
        ]
        self._sym_cache: dict[tuple[int, tuple[int, ...]], tuple[str, ...]] = {}
        if not self._fits(self.quotas, -1):
            per_el = {el: int((host.site_species_array == el).sum()) for el in elements}
            raise ConfigError(
                f"the composition {dict(zip([r.name for r in host.rules], self.quotas, strict=True))} asks for "
                f"more defects of an element than {host.key} has sites ({per_el})"
            )

    def _fits(self, rem: tuple[int, ...], after: int) -> bool:
        """Do the remaining quotas fit into the sites after ``after``?"""
        need = [0] * len(self.group_suffix)
        for t, q in enumerate(rem):
            need[self.rule_group[t]] += q
        return all(need[g] <= self.group_suffix[g][after + 1] for g in range(len(need)))

    def _defect_symbols(self, site: int, rem: tuple[int, ...]) -> tuple[str, ...]:
        """New species ``site`` may take with quotas ``rem`` left (cached)."""
        key = (site, rem)
        hit = self._sym_cache.get(key)
        if hit is None:
            g = int(self.site_group[site])
            out = []
            for t, q in enumerate(rem):
                if q > 0 and self.rule_group[t] == g:
                    nxt = (*rem[:t], q - 1, *rem[t + 1 :])
                    if self._fits(nxt, site):
                        out.append(self.rule_species[t])
            hit = self._sym_cache[key] = tuple(out)
        return hit

    def _minus(self, rem: tuple[int, ...], site: int, symbol: str) -> tuple[int, ...]:
        g = int(self.site_group[site])
        for t, q in enumerate(rem):
            if self.rule_group[t] == g and self.rule_species[t] == symbol:
                return (*rem[:t], q - 1, *rem[t + 1 :])
        raise ConfigError(f"site {site} cannot take {symbol!r} under this composition")  # not reached


class SparseCompositionAutomaton(_Quotas, SparseAutomaton):
    """``sparse`` answers with exactly ``quotas[t]`` defects of each type ``t`` (sites increasing)."""

    def __init__(self, host: Host, quotas: Sequence[int], allowed: np.ndarray | None = None) -> None:
        total = int(sum(quotas))
        SparseAutomaton.__init__(self, host, total, total, allowed)
        self._init_quotas(host, self.allowed, quotas)

    def _start_tally(self) -> Any:
        return self.quotas

    def _can_close(self, count: Any) -> bool:
        return not any(count)

    def _site_symbols(self, site: int, count: Any) -> tuple[str, ...]:
        return self._defect_symbols(site, count)

    def _tally(self, count: Any, site: int, symbol: str) -> Any:
        return self._minus(count, site, symbol)

    def _site_range_ok(self, prev: int, count: Any, lo: int, hi: int) -> bool:
        a, b = max(lo, prev + 1), min(hi, self.n - 1)
        return any(self._defect_symbols(s, count) for s in range(a, b + 1))


class SequentialCompositionAutomaton(_Quotas, SequentialAutomaton):
    """``cif`` / ``sites`` answers with exactly ``quotas[t]`` defects of each type ``t``."""

    def __init__(self, host: Host, encoding: str, quotas: Sequence[int], allowed: np.ndarray | None = None) -> None:
        total = int(sum(quotas))
        SequentialAutomaton.__init__(self, host, encoding, total, total, allowed)
        self._init_quotas(host, self.allowed, quotas)

    def start(self) -> State:
        return self._norm(0, self.quotas, 0)  # type: ignore[arg-type]

    def _symbols(self, i: int, count: Any) -> tuple[str, ...]:
        keep = (self.pristine[i],) if self._fits(count, i) else ()
        return keep + self._defect_symbols(i, count)

    def _tally(self, count: Any, i: int, symbol: str) -> Any:
        return count if symbol == self.pristine[i] else self._minus(count, i, symbol)


Automaton = SequentialAutomaton | SparseAutomaton


def make_automaton(
    host: Host,
    encoding: str,
    max_defects: int | None = None,
    min_defects: int = 0,
    allowed: np.ndarray | None = None,
    composition: Sequence[int] | None = None,
) -> Automaton:
    """The automaton of valid ``encoding`` answers for ``host`` within the defect budget; ``allowed``
    narrows the host's rules per (site, species) (a campaign allowing only some defect types).
    ``composition`` (one count per host rule, :func:`composition_counts`) asks for exactly that
    many defects of each type instead of a budget (``max_defects``/``min_defects`` are ignored)."""
    check_encoding(encoding)
    if composition is not None:
        if encoding == "sparse":
            return SparseCompositionAutomaton(host, composition, allowed)
        return SequentialCompositionAutomaton(host, encoding, composition, allowed)
    if encoding == "sparse":
        return SparseAutomaton(host, max_defects, min_defects, allowed)
    return SequentialAutomaton(host, encoding, max_defects, min_defects, allowed)


def accepts(automaton: Automaton, text: str) -> bool:
    """Does ``automaton`` accept ``text`` completely (test and debug helper)?"""
    state = automaton.start()
    for ch in text:
        nxt = automaton.step(state, ch)
        if nxt is None:
            return False
        state = nxt
    return automaton.is_final(state)


class _Node:
    __slots__ = ("children", "ids")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.ids: list[int] = []


class TokenTrie:
    """Trie of token texts (``None`` entries, e.g. special tokens, are left out)."""

    def __init__(self, strings: list[str | None]) -> None:
        self.strings = strings
        self.root = _Node()
        for i, s in enumerate(strings):
            if not s:
                continue
            node = self.root
            for ch in s:
                nxt = node.children.get(ch)
                if nxt is None:
                    nxt = node.children[ch] = _Node()
                node = nxt
            node.ids.append(i)


@dataclass
class TokenConstraint:
    """Allowed token ids per automaton state for one tokenizer (memoised)."""

    automaton: Automaton
    trie: TokenTrie
    eos_token_id: int
    forbidden: frozenset[int] = frozenset()  # ids never allowed (non-canonical pieces)
    max_cache: int = 200_000
    _cache: dict[State, np.ndarray] = field(default_factory=dict, repr=False)
    _viable_cache: dict[State, bool] = field(default_factory=dict, repr=False)

    def allowed(self, state: State) -> np.ndarray:
        """Sorted int64 ids allowed after ``state``: tokens whose every character the automaton
        accepts, plus EOS in the final state. Empty means a dead end (should not happen)."""
        hit = self._cache.get(state)
        if hit is not None:
            return hit
        out: list[int] = []
        if self.automaton.is_final(state):
            out.append(self.eos_token_id)
        for child, ns in self._walk(state):
            if child.ids and (not self.forbidden or self._viable(ns)):
                out.extend(t for t in child.ids if t not in self.forbidden)
        arr = np.unique(np.asarray(out, dtype=np.int64))
        if len(self._cache) >= self.max_cache:
            self._cache.clear()
            self._viable_cache.clear()
        self._cache[state] = arr
        return arr

    def _viable(self, state: State) -> bool:
        """Can some permitted token follow ``state`` (or is it final)? With forbidden tokens, a token
        may end where only forbidden ones continue (``"S"`` on the way to ``"Se"``)."""
        hit = self._viable_cache.get(state)
        if hit is not None:
            return hit
        ok = self.automaton.is_final(state) or any(
            any(t not in self.forbidden for t in child.ids) for child, _ in self._walk(state)
        )
        self._viable_cache[state] = ok
        return ok

    def _walk(self, state: State) -> Iterator[tuple[Any, State]]:
        """Depth-first walk of the vocabulary trie along the automaton from ``state``: every trie node
        whose characters the automaton accepts, with the automaton state after them (lazily, so a
        caller that stops early stops the walk)."""
        stack = [(self.trie.root, state)]
        while stack:
            node, st = stack.pop()
            for ch in self.automaton.next_chars(st):
                child = node.children.get(ch)
                if child is None:
                    continue
                ns = self.automaton.step(st, ch)
                if ns is None:
                    continue
                yield child, ns
                if child.children:
                    stack.append((child, ns))

    def advance(self, state: State, token_id: int) -> State | None:
        """State after emitting ``token_id`` (``None`` if the token is not allowed there)."""
        text = self.trie.strings[token_id] if 0 <= token_id < len(self.trie.strings) else None
        if not text:
            return None
        st = state
        for ch in text:
            nxt = self.automaton.step(st, ch)
            if nxt is None:
                return None
            st = nxt
        return st
