"""Read/write policies as pure decisions over what the model says.

A policy is a frozen dataclass (its config) with one method, `step(ctx)`: a generator that
yields lists of model `Query`s, receives the matching `Answer`s, and returns a `Decision`:
the target tokens to commit now (empty = READ the next source word). No fairseq, SimulEval
or I/O here: the Session drives the generator against a Model (or tests against fake answers).

The shared core around them (psfuture.session) commits tokens, stops at EOS while the source is
incomplete, and, once the source is finished, writes the rest with `greedy` -- the one decode
loop every policy reuses.

PsFuture's pseudo-future form, EOS-on-prefix and divergence are psfuture's own configurable
choices (the paper's exact settings are not available); defaults come from our ablation.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Generator

import torch

from psfuture.errors import ConfigError
from psfuture.backends.base import Answer, Query, Vocab


@dataclass(frozen=True)
class Context:
    """What a policy sees at one step."""

    source: tuple[tuple[int, ...], ...]  # piece ids of each source word read so far
    target: tuple[int, ...]  # committed target ids (no BOS, no EOS)
    vocab: Vocab
    max_len: int  # target length cap (tokens) for the source read so far
    memory: Any = None  # what this policy returned as Decision.memory last time (per stream)

    @property
    def src(self) -> tuple[int, ...]:
        return tuple(i for word in self.source for i in word)

    @property
    def n_words(self) -> int:
        return len(self.source)

    @property
    def target_words(self) -> int:
        """Target words begun so far (a word begins at a word-start piece or at the first piece)."""
        return sum(1 for i, t in enumerate(self.target) if i == 0 or self.vocab.starts_word(t))


@dataclass(frozen=True)
class Decision:
    write: tuple[int, ...] = ()  # tokens to commit; () means READ
    memory: Any = None


Step = Generator[list[Query], list[Answer], Decision]


def greedy(src: tuple[int, ...], prefix: tuple[int, ...], vocab: Vocab, max_len: int,
           stop: Callable[[int, Answer], bool] | None = None, attn_layer: int | None = None):
    """Greedy decoding after `prefix` until EOS (included), `max_len` tokens, or stop(token, answer)
    (the token is then dropped). Returns the new tokens."""
    out: list[int] = []
    while len(prefix) + len(out) < max_len:
        (answer,) = yield [Query(src, prefix + tuple(out), attn_layer)]
        token = int(answer.logprobs.argmax())
        if stop is not None and stop(token, answer):
            break
        out.append(token)
        if token == vocab.eos:
            break
    return tuple(out)


# ---- divergences between the prefix distribution p and the pseudo-future one q (log-probs) -------
def _kl(logp: torch.Tensor, logq: torch.Tensor) -> float:
    return float((logp.exp() * (logp - logq)).sum())


def _js(logp: torch.Tensor, logq: torch.Tensor) -> float:
    logm = torch.logaddexp(logp, logq) - math.log(2.0)
    return 0.5 * _kl(logp, logm) + 0.5 * _kl(logq, logm)


def _cos(logp: torch.Tensor, logq: torch.Tensor) -> float:
    return 1.0 - float(torch.nn.functional.cosine_similarity(logp.exp(), logq.exp(), dim=0))


DIVERGENCES: dict[str, Callable[[torch.Tensor, torch.Tensor], float]] = {
    "kl": _kl,  # KL(p || q)
    "rkl": lambda logp, logq: _kl(logq, logp),  # KL(q || p)
    "js": _js,  # Jensen-Shannon (nats), bounded by ln 2
    "tv": lambda logp, logq: 0.5 * float((logp.exp() - logq.exp()).abs().sum()),  # total variation
    "top1": lambda logp, logq: float(int(logp.argmax()) != int(logq.argmax())),  # 0 or 1
    "cos": _cos,  # 1 - cos(p, q) on probabilities, as two third-party summaries of the paper describe it
}


def divergence(name: str, logp: torch.Tensor, logq: torch.Tensor) -> float:
    return DIVERGENCES[name](logp, logq)


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not allowed; choose one of {', '.join(map(str, allowed))}")


class Policy:
    """Base: subclasses are frozen dataclasses; `name` keys them in POLICIES."""

    name: ClassVar[str]
    prefix_eos: bool = True

    def step(self, ctx: Context) -> Step:
        raise NotImplementedError
        yield  # pragma: no cover

    def validate(self, vocab: Vocab) -> None:
        """Raise ConfigError if a setting does not fit this model's vocabulary."""

    def source(self, ctx: Context) -> tuple[int, ...]:
        """The source prefix as the model sees it while streaming."""
        return ctx.src + ((ctx.vocab.eos,) if self.prefix_eos else ())

    def settings(self) -> dict:
        return dataclasses.asdict(self)

    def signature(self) -> str:
        return f"{self.name}(" + ",".join(f"{k}={v}" for k, v in self.settings().items()) + ")"


PLACEHOLDERS = ("unk", "bos", "pad", "frequent")


def pseudo_future_ids(vocab: Vocab, placeholder: str, k: int) -> tuple[int, ...]:
    """k copies of the placeholder token.

    unk: <unk>; bos: <s>, a special the encoder never sees (our stand-in for a <mask> token);
    pad: <pad>, which fairseq masks out, so the pseudo-future reduces to an EOS position shift;
    frequent: the most frequent piece in the dictionary; anything else: that exact piece
    (e.g. "<mask>" when the dictionary has one, or "\u2581und").
    """
    named = {"unk": vocab.unk, "bos": vocab.bos, "pad": vocab.pad, "frequent": vocab.nspecial}
    token = named.get(placeholder, vocab.indices.get(placeholder))
    if token is None:
        raise ConfigError(f"placeholder={placeholder!r} is neither one of {', '.join(PLACEHOLDERS)} nor a "
                          "piece of the model's dictionary")
    return (token,) * k


WRITE_FROM = ("p", "q")


@dataclass(frozen=True)
class PsFuture(Policy):
    """WRITE the top token of p = P(.|source prefix) when div(p, q) <= threshold, where
    q = P(.|source prefix + pseudo-future + EOS); READ otherwise. future_eos=False drops that EOS
    (for models fine-tuned on prefixes without EOS, whose EOS means "the sentence is complete").

    Defaults are psfuture's choice from a one-factor-at-a-time ablation on the GNOME dev set
    (eval/results/psfuture_ablation_dev100/sweep.md): one <unk>, no EOS after the prefix, KL(p||q); threshold 0.1
    gave AL ~3.7 there. More <unk>s, <s>, JS or total variation did not do better; <pad> is masked
    by the encoder, so it only tests EOS placement.

    Decision-rule options, all off by default (psfuture's own, not the paper's): `futures` > 1 also asks
    pseudo-futures of k+1 .. k+futures-1 placeholders and takes the largest divergence (write only when no
    guessed continuation length changes the answer); `agree` also requires every q's top token to be p's;
    `min_read` READs until that many source words are in before the first write (German verbs come late);
    `write_from="q"` writes the top token of the k-placeholder q instead of p's."""

    name: ClassVar[str] = "psfuture"
    threshold: float = 0.1
    placeholder: str = "unk"
    k: int = 1
    prefix_eos: bool = False
    divergence: str = "kl"
    future_eos: bool = True
    futures: int = 1
    agree: bool = False
    min_read: int = 0
    write_from: str = "p"

    def __post_init__(self):
        _choice("divergence", self.divergence, tuple(DIVERGENCES))
        _choice("write_from", self.write_from, WRITE_FROM)
        if not (isinstance(self.k, int) and 1 <= self.k <= 8):
            raise ConfigError(f"k={self.k!r}: the pseudo-future length must be an integer in 1..8")
        if not (isinstance(self.futures, int) and 1 <= self.futures <= 9 - self.k):
            raise ConfigError(f"futures={self.futures!r}: the number of pseudo-futures (lengths k .. k+futures-1, "
                              f"at most 8) must be an integer in 1..{9 - self.k} for k={self.k}")
        if not (isinstance(self.min_read, int) and self.min_read >= 0):
            raise ConfigError(f"min_read={self.min_read!r}: source words before the first write must be an "
                              "integer >= 0")
        if not (math.isfinite(self.threshold) and self.threshold >= 0):
            raise ConfigError(f"threshold={self.threshold!r}: a divergence threshold must be a finite number >= 0 "
                              "(0 writes only when the two distributions are identical; larger writes earlier)")

    def validate(self, vocab: Vocab) -> None:
        pseudo_future_ids(vocab, self.placeholder, self.k)

    def future_tails(self, vocab: Vocab) -> tuple[tuple[int, ...], ...]:
        """What each pseudo-future query appends to the source prefix (placeholders, then EOS if future_eos)."""
        eos = (vocab.eos,) * self.future_eos
        return tuple(pseudo_future_ids(vocab, self.placeholder, k) + eos for k in range(self.k, self.k + self.futures))

    def step(self, ctx: Context) -> Step:
        if not ctx.target and ctx.n_words < self.min_read:
            return Decision()
        futures = [Query(ctx.src + tail, ctx.target) for tail in self.future_tails(ctx.vocab)]
        p, *qs = yield [Query(self.source(ctx), ctx.target), *futures]
        top = int(p.logprobs.argmax())
        if self.agree and any(int(q.logprobs.argmax()) != top for q in qs):
            return Decision()
        if max(divergence(self.divergence, p.logprobs, q.logprobs) for q in qs) <= self.threshold:
            return Decision((top if self.write_from == "p" else int(qs[0].logprobs.argmax()),))
        return Decision()


@dataclass(frozen=True)
class Offline(Policy):
    """Read everything, then greedy decoding: the quality ceiling."""

    name: ClassVar[str] = "offline"

    def step(self, ctx: Context) -> Step:
        return Decision()
        yield  # pragma: no cover


@dataclass(frozen=True)
class WaitK(Policy):
    """Test-time wait-k (Ma et al. 2019) in words: target word t needs k + t - 1 source words."""

    name: ClassVar[str] = "waitk"
    k: int = 3
    prefix_eos: bool = True

    def __post_init__(self):
        if not (isinstance(self.k, int) and self.k >= 1):
            raise ConfigError(f"k={self.k!r}: wait-k needs an integer k >= 1")

    def step(self, ctx: Context) -> Step:
        (a,) = yield [Query(self.source(ctx), ctx.target)]
        token = int(a.logprobs.argmax())
        # Pieces continuing a word are free; a new word waits for its source word.
        if (ctx.target and not ctx.vocab.starts_word(token)) or ctx.n_words >= self.k + ctx.target_words:
            return Decision((token,))
        return Decision()


@dataclass(frozen=True)
class LocalAgreement(Policy):
    """LA-n: after each READ, greedy re-decode from the committed prefix; commit the longest
    common prefix of the last n re-decodings. Memory: (words read, last n-1 hypotheses)."""

    name: ClassVar[str] = "la"
    n: int = 2
    prefix_eos: bool = True

    def __post_init__(self):
        if not (isinstance(self.n, int) and self.n >= 2):
            raise ConfigError(f"n={self.n!r}: local agreement compares at least 2 hypotheses")

    def step(self, ctx: Context) -> Step:
        words, hyps = ctx.memory or (0, ())
        if words == ctx.n_words:  # already agreed on this source; wait for the next word
            return Decision((), ctx.memory)
        new = yield from greedy(self.source(ctx), ctx.target, ctx.vocab, ctx.max_len)
        hyp = ctx.target + tuple(t for t in new if t != ctx.vocab.eos)
        hyps = (hyps + (hyp,))[-self.n:]
        if len(hyps) < self.n:
            return Decision((), (ctx.n_words, hyps))
        common = len(ctx.target)
        while all(len(h) > common for h in hyps) and len({h[common] for h in hyps}) == 1:
            common += 1
        return Decision(hyp[len(ctx.target):common], (ctx.n_words, hyps))


@dataclass(frozen=True)
class AlignAtt(Policy):
    """AlignAtt (Papi et al. 2023) on text: greedy from the committed prefix; stop at the first
    token whose cross-attention argmax falls on the last `frames` source pieces (or EOS)."""

    name: ClassVar[str] = "alignatt"
    frames: int = 2
    layer: int | None = None  # decoder layer; None = last
    prefix_eos: bool = True

    def __post_init__(self):
        if not (isinstance(self.frames, int) and self.frames >= 1):
            raise ConfigError(f"frames={self.frames!r}: AlignAtt needs an integer >= 1")

    def step(self, ctx: Context) -> Step:
        border = len(ctx.src) - self.frames
        new = yield from greedy(self.source(ctx), ctx.target, ctx.vocab, ctx.max_len,
                                stop=lambda token, a: int(a.attn.argmax()) >= border, attn_layer=self.layer)
        return Decision(new)


POLICIES: dict[str, type[Policy]] = {p.name: p for p in (PsFuture, Offline, WaitK, LocalAgreement, AlignAtt)}


def make_policy(name: str, **settings) -> Policy:
    """Build a policy by name; unknown names/settings raise ConfigError listing the valid ones."""
    if name not in POLICIES:
        raise ConfigError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
    cls = POLICIES[name]
    fields = {f.name for f in dataclasses.fields(cls)}
    bad = set(settings) - fields
    if bad:
        raise ConfigError(f"policy {name!r} has no setting {', '.join(sorted(bad))}; "
                          f"its settings are {', '.join(sorted(fields)) or 'none'}")
    for f in dataclasses.fields(cls):
        if f.name in settings and not _is_a(settings[f.name], f.default):
            kind = "an integer or null" if f.default is None else type(f.default).__name__
            raise ConfigError(f"{name} setting {f.name}={settings[f.name]!r}: expected {kind}")
    return cls(**settings)


def _is_a(value, default) -> bool:
    """Is `value` acceptable where the setting's default is `default` (JSON-ish: an int is a float)?"""
    if isinstance(value, bool) or isinstance(default, bool):
        return type(value) is type(default)
    if default is None or isinstance(default, int):
        return isinstance(value, int) or (default is None and value is None)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))
