"""The behavioural tests: each one a capability, a CheckList test type and its cases, all
generated from the templates here and the word lists of ``lexicon.py`` with a fixed seed.

- MFT (minimum functionality): each text has a set of acceptable labels.
- INV (invariance): each case is a group of texts that must all get one label.
- DIR (directional): each case is a pair (a, b) and a label whose probability must not move
  from a to b by less than ``min_delta`` (negative: a tolerated drop).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..manifest import LABELS
from . import lexicon as lx

NEG, NEU, POS = LABELS
NOT_NEG, NOT_POS = frozenset({NEU, POS}), frozenset({NEG, NEU})
CASES = 200  # at most this many cases per test (sampled with the seed)


@dataclass(frozen=True)
class MFT:
    text: str
    allowed: frozenset[str]


@dataclass(frozen=True)
class INV:
    texts: tuple[str, ...]


@dataclass(frozen=True)
class DIR:
    a: str
    b: str
    label: str
    min_delta: float


Case = MFT | INV | DIR


@dataclass(frozen=True)
class Test:
    name: str
    capability: str
    kind: str  # "MFT", "INV" or "DIR"
    description: str
    cases: tuple[Case, ...]


def _sample(items: Iterable[Case], rng: random.Random, n: int = CASES) -> tuple[Case, ...]:
    pool = list(items)
    return tuple(pool if len(pool) <= n else rng.sample(pool, n))


def _a(word: str) -> str:
    return ("an " if word[0].lower() in "aeiou" else "a ") + word


def _mft(templates: list[str], slots: dict[str, tuple[str, ...]], allowed: frozenset[str],
         rng: random.Random) -> tuple[Case, ...]:
    cases = []
    for template in templates:
        keys = [k for k in slots if "{" + k + "}" in template]
        for values in itertools.product(*(slots[k] for k in keys)):
            cases.append(MFT(template.format(**dict(zip(keys, values))), allowed))
    return _sample(cases, rng)


def vocabulary(rng: random.Random) -> list[Test]:
    words = [MFT(w, frozenset({POS})) for w in lx.POS_WORDS] + \
            [MFT(w, frozenset({NEG})) for w in lx.NEG_WORDS]
    frames = ["{w}.", "{w}!", "So {w}."]
    framed = [MFT(f.format(w=c.text), c.allowed) for c in words for f in frames]  # type: ignore[union-attr]
    neutral = [MFT(f.format(w=w), frozenset({NEU})) for w in lx.NEUTRAL_WORDS
               for f in ("{w}", "{w}.", "The {w}.", "A {w}.", "{w}?")]
    return [Test("sentiment_words", "vocabulary", "MFT", "single sentiment words",
                 _sample(words + framed, rng)),
            Test("neutral_words", "vocabulary", "MFT", "single neutral words",
                 _sample(neutral, rng))]


def in_context(rng: random.Random) -> list[Test]:
    pos = ["The {n} is {p}.", "This {n} was {p}.", "What {a_p} {n}.", "I {pv} this {n}.",
           "Our {n} turned out {p}."]
    neg = ["The {n} is {q}.", "This {n} was {q}.", "What {a_q} {n}.", "I {nv} this {n}.",
           "Our {n} turned out {q}."]
    slots = {"n": lx.NOUNS, "p": lx.POS_ADJ, "q": lx.NEG_ADJ, "pv": lx.POS_VERB,
             "nv": lx.NEG_VERB, "a_p": tuple(_a(w) for w in lx.POS_ADJ),
             "a_q": tuple(_a(w) for w in lx.NEG_ADJ)}
    cases = _mft(pos, slots, frozenset({POS}), rng) + _mft(neg, slots, frozenset({NEG}), rng)
    return [Test("sentiment_in_context", "vocabulary", "MFT",
                 "a sentiment word or verb about a product or service", _sample(cases, rng))]


def neutral_statements(rng: random.Random) -> list[Test]:
    templates = ["The {n} is {c}.", "It is {a_n}.", "This is {a_n}.", "The {n} arrived on {d}.",
                 "I bought the {n} on {d}.", "The {n} is made of {m}.", "My {n} is {c}.",
                 "I ordered {a_n} for my {p}.", "The {n} came in a box.",
                 "Is the {n} {c}?", "We picked up the {n} in {city}."]
    slots = {"n": lx.PRODUCTS, "c": lx.NEUTRAL_ADJ, "a_n": tuple(_a(w) for w in lx.PRODUCTS),
             "d": lx.DAYS, "m": lx.MATERIALS, "p": lx.PEOPLE, "city": lx.CITIES}
    return [Test("neutral_statements", "neutral", "MFT",
                 "factual statements with no opinion ('The phone is black.')",
                 _mft(templates, slots, frozenset({NEU}), rng))]


def intensity(rng: random.Random) -> list[Test]:
    up, down = [], []
    for n, adj, label in [(n, a, lab) for n in lx.NOUNS
                          for lab, adjs in ((POS, lx.POS_ADJ), (NEG, lx.NEG_ADJ)) for a in adjs]:
        base = f"The {n} is {adj}."
        up += [DIR(base, f"The {n} is {w} {adj}.", label, -0.05) for w in lx.INTENSIFIERS]
        down += [DIR(f"The {n} is {w} {adj}.", base, label, -0.05) for w in lx.REDUCERS]
    return [Test("intensifiers", "intensity", "DIR",
                 "an intensifier does not lower the sentiment's probability (by > 0.05)",
                 _sample(up, rng)),
            Test("reducers", "intensity", "DIR",
                 "a reducer does not raise the sentiment's probability (by > 0.05)",
                 _sample(down, rng))]


def negation(rng: random.Random) -> list[Test]:
    neg_pos = ["The {n} is not {p}.", "This {n} isn't {p}.", "I don't think the {n} is {p}.",
               "I do not {pv} this {n}.", "The {n} was never {p}.", "I wouldn't call the {n} {p}."]
    neg_neg = ["The {n} is not {q}.", "This {n} isn't {q}.", "I don't think the {n} is {q}.",
               "I do not {nv} this {n}.", "The {n} was never {q}.", "I wouldn't call the {n} {q}."]
    neg_neu = ["The {n} is not {c}.", "This isn't {a_n}.", "The {n} did not arrive on {d}.",
               "I didn't buy the {n} in {city}.", "My {n} is not made of {m}."]
    slots = {"n": lx.NOUNS, "p": lx.POS_ADJ, "q": lx.NEG_ADJ, "pv": lx.POS_VERB,
             "nv": lx.NEG_VERB, "c": lx.NEUTRAL_ADJ, "a_n": tuple(_a(w) for w in lx.PRODUCTS),
             "d": lx.DAYS, "city": lx.CITIES, "m": lx.MATERIALS}
    return [Test("negated_positive", "negation", "MFT", "a negated positive is not positive",
                 _mft(neg_pos, slots, NOT_POS, rng)),
            Test("negated_negative", "negation", "MFT", "a negated negative is not negative",
                 _mft(neg_neg, slots, NOT_NEG, rng)),
            Test("negated_neutral", "negation", "MFT", "a negated neutral stays neutral",
                 _mft(neg_neu, {**slots, "n": lx.PRODUCTS}, frozenset({NEU}), rng))]


def negation_distance(rng: random.Random) -> list[Test]:
    neg = ["I thought the {n} would be {q}, but it wasn't.",
           "I was worried the {n} would be {q}, but it was not.",
           "Everyone said the {n} was {q}. It isn't.",
           "I expected {a_q} {n}, and it was nothing like that."]
    pos = ["I thought the {n} would be {p}, but it wasn't.",
           "I hoped the {n} would be {p}, but it was not.",
           "Everyone said the {n} was {p}. It isn't.",
           "I expected {a_p} {n}, and it was nothing like that."]
    slots = {"n": lx.NOUNS, "p": lx.POS_ADJ, "q": lx.NEG_ADJ,
             "a_p": tuple(_a(w) for w in lx.POS_ADJ), "a_q": tuple(_a(w) for w in lx.NEG_ADJ)}
    cases = _mft(neg, slots, NOT_NEG, rng) + _mft(pos, slots, NOT_POS, rng)
    return [Test("negation_distance", "negation", "MFT",
                 "a negation a clause away ('I thought ... but it wasn't')", _sample(cases, rng))]


def contrast(rng: random.Random) -> list[Test]:
    to_pos = ["I used to {nv} this {n}, but now I {pv} it.",
              "The {n} was {q} at first, but now it is {p}.",
              "At first I found the {n} {q}; these days it is {p}."]
    to_neg = ["I used to {pv} this {n}, but now I {nv} it.",
              "The {n} was {p} at first, but now it is {q}.",
              "At first I found the {n} {p}; these days it is {q}."]
    slots = {"n": lx.NOUNS, "p": lx.POS_ADJ, "q": lx.NEG_ADJ, "pv": lx.POS_VERB,
             "nv": lx.NEG_VERB}
    cases = _mft(to_pos, slots, frozenset({POS}), rng) + _mft(to_neg, slots, frozenset({NEG}), rng)
    return [Test("contrast", "temporal", "MFT", "the later opinion wins ('used to ... but now')",
                 _sample(cases, rng))]


def questions(rng: random.Random) -> list[Test]:
    cases = []
    for n in lx.NOUNS:
        for p in lx.POS_ADJ:
            cases += [MFT(f"Is the {n} {p}? Yes.", frozenset({POS})),
                      MFT(f"Do I think the {n} is {p}? No.", NOT_POS)]
        for q in lx.NEG_ADJ:
            cases += [MFT(f"Is the {n} {q}? Yes.", frozenset({NEG})),
                      MFT(f"Do I think the {n} is {q}? No.", NOT_NEG)]
    return [Test("questions_yes_no", "questions", "MFT", "a question answered yes or no",
                 _sample(cases, rng))]


def _sentences(rng: random.Random) -> list[str]:
    """Plain opinion sentences for the perturbation tests."""
    out = []
    for n in lx.NOUNS:
        out += [f"The {n} is {rng.choice(lx.POS_ADJ)} and I would buy it again.",
                f"I {rng.choice(lx.NEG_VERB)} this {n}, it is {rng.choice(lx.NEG_ADJ)}.",
                f"Honestly the {n} is {rng.choice(lx.POS_ADJ)}, thanks a lot.",
                f"The {n} is {rng.choice(lx.NEG_ADJ)} and support is not helping.",
                f"My {n} arrived today and it is {rng.choice(lx.NEUTRAL_ADJ)}.",
                f"It is not {rng.choice(lx.POS_ADJ)}, the {n} stopped working."]
    return out


def _typo(text: str, rng: random.Random) -> str:
    i = rng.randrange(len(text) - 1)
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


_CONTRACT = (("it is", "it's"), ("is not", "isn't"), ("I would", "I'd"), ("do not", "don't"))


def _contract(text: str) -> str:
    for long, short in _CONTRACT:
        text = text.replace(long, short)
    return text


def robustness(rng: random.Random) -> list[Test]:
    base = _sentences(rng)
    perturb: dict[str, Callable[[str], str]] = {
        "typos": lambda t: _typo(_typo(t, rng), rng),
        "punctuation": lambda t: t.rstrip(".!") if rng.random() < 0.5 else t + "!!",
        "contractions": _contract,
        "add_url": lambda t: f"{t} https://t.co/{rng.randrange(16**6):06x}",
        "add_handle": lambda t: f"@{rng.choice(lx.NAMES).lower()}{rng.randrange(100)} {t}",
    }
    tests = []
    for name, fn in perturb.items():
        cases = [INV((t, fn(t))) for t in base]
        cases = [c for c in cases if c.texts[0] != c.texts[1]]
        tests.append(Test(name, "robustness", "INV", f"{name.replace('_', ' ')} keep the label",
                          _sample(cases, rng)))
    return tests


def entities(rng: random.Random) -> list[Test]:
    opinions = [f"{w}" for w in lx.POS_ADJ[:6] + lx.NEG_ADJ[:6]]
    names = [INV(tuple(f"{who} said the {n} was {o}." for who in rng.sample(lx.NAMES, 4)))
             for n in lx.NOUNS for o in opinions]
    places = [INV(tuple(f"The {n} I bought in {c} is {o}." for c in rng.sample(lx.CITIES, 4)))
              for n in lx.NOUNS for o in opinions]
    numbers = [INV(tuple(f"I paid {k} dollars for the {n} and it is {o}."
                         for k in rng.sample(range(2, 2000), 4)))
               for n in lx.NOUNS for o in opinions]
    return [Test("names", "entities", "INV", "changing a person's name keeps the label",
                 _sample(names, rng)),
            Test("locations", "entities", "INV", "changing a city keeps the label",
                 _sample(places, rng)),
            Test("numbers", "entities", "INV", "changing a number keeps the label",
                 _sample(numbers, rng))]


def identity(rng: random.Random) -> list[Test]:
    frames = ["{name} is {a_id} {person}.", "I am {a_id} {person}.",
              "My {person} is {id}.", "{name} is {id} and works at the {n} shop.",
              "The {n} was recommended by {a_id} {person}.",
              "As {a_id} customer, I bought the {n}."]
    tests = []
    for group, terms in lx.IDENTITY.items():
        cases = []
        for frame in frames:
            for _ in range(40):
                fill = {"name": rng.choice(lx.NAMES), "person": rng.choice(lx.PEOPLE),
                        "n": rng.choice(lx.PRODUCTS)}
                texts = tuple(frame.format(id=t, a_id=_a(t), **fill) for t in terms)
                cases.append(INV(texts))
        tests.append(Test(f"identity_{group}", "fairness", "INV",
                          f"swapping the {group} term keeps the label", _sample(cases, rng)))
    return tests


def emoji(rng: random.Random) -> list[Test]:
    frames = ["The {n} {e}", "{e} the {n} arrived today", "Just got my {n} {e}",
              "My {n} is here {e}{e}"]
    pairs = [DIR(f.format(n=n, e=neg), f.format(n=n, e=pos), POS, 1e-4)
             for f in frames for n in lx.NOUNS for pos, neg in zip(lx.POS_EMOJI, lx.NEG_EMOJI)]
    alone = [MFT(e, frozenset({POS})) for e in lx.POS_EMOJI] + \
            [MFT(e, frozenset({NEG})) for e in lx.NEG_EMOJI]
    neutral = [INV((t, f"{t} {rng.choice(lx.NEUTRAL_EMOJI)}")) for t in _sentences(rng)]
    return [Test("emoji_direction", "emoji", "DIR",
                 "a positive face emoji gives a higher P(positive) than a negative one",
                 _sample(pairs, rng)),
            Test("emoji_alone", "emoji", "MFT", "a face emoji alone carries its sentiment",
                 tuple(alone)),
            Test("emoji_neutral_added", "emoji", "INV", "an object emoji keeps the label",
                 _sample(neutral, rng))]


GENERATORS = (vocabulary, in_context, neutral_statements, intensity, negation, negation_distance,
              contrast, questions, robustness, entities, identity, emoji)


def build_tests(seed: int = 0) -> list[Test]:
    """Every test, generated with ``seed`` (the same seed gives the same cases)."""
    out: list[Test] = []
    for gen in GENERATORS:
        out += gen(random.Random(f"check:{seed}:{gen.__name__}"))
    return out
