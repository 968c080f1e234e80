"""Identity terms: kept whole in the student's vocabulary, and swapped in real training texts.

A counterfactual copy of a training text that names an identity group replaces each such word
with another word of the same group list (case kept), and carries the original's label: the
teacher learns from it that the group does not decide the sentiment, and the student's copies
carry the teacher's soft label of the *original* text, so a bias the teacher kept is not
copied either. The lists are this project's own (this is for training; the behavioural suite
in ``edge_sentiment/check`` has its own, separate lexicons).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from typing import Any

GROUPS: dict[str, tuple[str, ...]] = {
    "religion": ("christian", "muslim", "jewish", "hindu", "buddhist", "sikh", "atheist",
                 "catholic", "protestant", "mormon", "orthodox", "agnostic"),
    "nationality": ("american", "mexican", "canadian", "chinese", "indian", "russian", "german",
                    "french", "british", "irish", "italian", "spanish", "japanese", "korean",
                    "african", "nigerian", "kenyan", "egyptian", "iranian", "iraqi", "syrian",
                    "pakistani", "afghan", "turkish", "polish", "ukrainian", "brazilian",
                    "cuban", "vietnamese", "filipino", "israeli", "palestinian", "saudi",
                    "somali", "ethiopian", "greek", "swedish", "dutch", "australian"),
    "ethnicity": ("asian", "hispanic", "latino", "latina", "arab", "caucasian", "european",
                  "indigenous", "jew"),
    "sexuality": ("gay", "lesbian", "straight", "bisexual", "transgender", "queer",
                  "heterosexual", "homosexual", "asexual", "nonbinary"),
    "gender": ("man", "woman", "men", "women", "boy", "girl", "male", "female", "guy", "lady"),
}
# Plural or paired forms must stay grammatical: these groups swap only within the same number.
_PAIRS = {"man": "singular", "woman": "singular", "boy": "singular", "girl": "singular",
          "guy": "singular", "lady": "singular", "men": "plural", "women": "plural"}
TERMS = {w: g for g, words in GROUPS.items() for w in words}
_WORD = re.compile(r"\b(" + "|".join(sorted(TERMS, key=len, reverse=True)) + r")\b", re.IGNORECASE)
# Group words that are also everyday words where a swap would make nonsense ("straight to
# the point", "a man of his word" is fine, "the gay nineties" rare): only swapped *into*.
_NOT_FROM = {"straight", "orthodox", "guy"}


def _choices(word: str) -> list[str]:
    group = TERMS[word]
    same = [w for w in GROUPS[group] if w != word]
    if word in _PAIRS:
        same = [w for w in same if _PAIRS.get(w) == _PAIRS[word]]
    return same


def _cased(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    return word.capitalize() if template[:1].isupper() else word


def swap_identity(text: str, rng: random.Random) -> str | None:
    """``text`` with every identity term swapped for another of its group, or None if it names
    none (or only words that are not swapped from)."""
    changed = False

    def repl(m: re.Match[str]) -> str:
        nonlocal changed
        word = m.group(0).lower()
        if word in _NOT_FROM:
            return m.group(0)
        changed = True
        return _cased(m.group(0), rng.choice(_choices(word)))

    out = _WORD.sub(repl, text)
    return out if changed else None


def counterfactuals(texts: list[str], seed: int, copies: int = 1) -> list[tuple[int, str]]:
    """``(index, swapped text)`` for each text that names an identity group, ``copies`` each."""
    out: list[tuple[int, str]] = []
    for c in range(copies):
        rng = random.Random(f"identity:{seed}:{c}")
        for i, text in enumerate(texts):
            swapped = swap_identity(text, rng)
            if swapped is not None and swapped != text:
                out.append((i, swapped))
    return out


def kept_words() -> list[str]:
    """Identity words the pruned vocabulary keeps whole, whatever their count in the data."""
    return sorted(TERMS)


# Blinding: the student's tokenizer reads every word below as one token, ``BLIND_TOKEN``, so no
# group word can move a student's score (Garg et al. 2019 call this blindness). Wider than the
# swap lists: demonyms, religions, ethnicities, sexualities and gender words, with plural forms
# and two-word names first. Colour words "black" and "white" are in it: a phone's colour carries
# no sentiment either. "an" reads as "a", so "an Asian" and "a Black" differ in nothing else.
BLIND_TOKEN = "identityterm"
_BLIND_WORDS = {
    "religion": "christian muslim moslem islamic jewish hindu buddhist sikh jain atheist agnostic "
                "catholic protestant mormon orthodox evangelical baptist methodist lutheran "
                "anglican presbyterian quaker amish pagan taoist shinto zoroastrian rastafarian "
                "bahai druze",
    "ethnicity": "black white asian hispanic latino latina latinx arab caucasian indigenous jew "
                 "aboriginal",
    "sexuality": "gay lesbian straight bisexual pansexual asexual heterosexual homosexual queer "
                 "transgender transsexual trans nonbinary non-binary cisgender cis intersex lgbt "
                 "lgbtq lgbtqia",
    "gender": "man woman men women boy girl male female guy lady ladies gentleman gentlemen",
    "nationality": (
        "afghan albanian algerian american andorran angolan argentine argentinian armenian "
        "australian austrian azerbaijani bahamian bahraini bangladeshi barbadian belarusian "
        "belgian belizean beninese bhutanese bolivian bosnian botswanan brazilian british "
        "bruneian bulgarian burmese burundian cambodian cameroonian canadian chadian chilean "
        "chinese colombian congolese croatian cuban cypriot czech danish djiboutian dominican "
        "dutch ecuadorian egyptian emirati english eritrean estonian ethiopian fijian filipino "
        "finnish french gabonese gambian georgian german ghanaian greek grenadian guatemalan "
        "guinean guyanese haitian honduran hungarian icelandic indian indonesian iranian iraqi "
        "irish israeli italian ivorian jamaican japanese jordanian kazakh kenyan korean kosovar "
        "kuwaiti kyrgyz lao laotian latvian lebanese liberian libyan lithuanian luxembourgish "
        "macedonian malagasy malawian malaysian maldivian malian maltese mauritanian mauritian "
        "mexican moldovan monegasque mongolian montenegrin moroccan mozambican namibian "
        "nepalese nepali nicaraguan nigerian nigerien norwegian omani pakistani palestinian "
        "panamanian paraguayan persian peruvian polish portuguese qatari romanian russian "
        "rwandan salvadoran samoan saudi scottish senegalese serbian singaporean "
        "slovak slovakian slovenian somali african sudanese surinamese swedish swiss syrian "
        "taiwanese tajik tanzanian thai togolese tongan trinidadian tunisian turkish turkmen "
        "ugandan ukrainian uruguayan uzbek venezuelan vietnamese welsh yemeni zambian "
        "zimbabwean european hawaiian tibetan kurdish"),
}
_BLIND_PHRASES = ("african american", "native american", "asian american", "mexican american",
                  "south african", "south korean", "north korean", "new zealander",
                  "sierra leonean", "puerto rican", "first nations", "pacific islander")


def blind_words(but: Sequence[str] = ()) -> list[str]:
    """Every word and two-word name the student's tokenizer reads as ``BLIND_TOKEN``, less
    ``but``."""
    words = {w for text in _BLIND_WORDS.values() for w in text.split()}
    words |= set(TERMS) | set(_BLIND_PHRASES)
    return sorted(words - set(but), key=lambda w: (-len(w), w))


def blind_normalizers(but: Sequence[str] = ()) -> list[dict[str, object]]:
    """``tokenizers`` normalizer steps (after lower-casing) that blind identity words (all of
    ``blind_words(but)``)."""
    alternatives = alternation(blind_words(but))
    return [
        {"type": "Replace", "pattern": {"Regex": rf"\b(?:{alternatives})(?:e?s)?\b"},
         "content": BLIND_TOKEN},
        {"type": "Replace", "pattern": {"Regex": r"\ban\b"}, "content": "a"},
    ]


def alternation(words: Sequence[str]) -> str:
    """A regex matching exactly one of ``words`` (a space matching runs of spaces or hyphens),
    written as a trie: words share their prefixes, so a backtracking engine (Oniguruma, which
    the tokenizer runs) follows one branch per letter instead of trying every word in turn. On
    marc dev texts that made the blinding steps cost 12 instead of 58 us per text, with the same
    ids on every dev text (``tests/convert/test_emoji_identity.py``)."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}  # a word ends here
    return _branch(trie)


def _branch(node: dict[str, Any]) -> str:
    alts = [("[\\s-]+" if ch == " " else re.escape(ch)) + _branch(child)
            for ch, child in sorted(node.items()) if ch]
    if "" in node:  # the longer words first (greedy), else the word that ends here
        return f"(?:{'|'.join(alts)})?" if alts else ""
    return alts[0] if len(alts) == 1 else f"(?:{'|'.join(alts)})"


def anchor_tokenizer(src: str, anchor: str) -> str:
    """``src`` (a tokenizer's JSON) with blinding after training: every word of
    ``blind_words()`` reads as ``anchor``, a word the trained student already has, and "an" as
    "a". Swapping one identity word for another then cannot move a score, and the student needs
    no retraining (blinded training cost tweets 1.5-2.7 points in three builds)."""
    data = json.loads(src)
    steps = [dict(s, content=anchor) if s["content"] == BLIND_TOKEN else s
             for s in blind_normalizers()]
    norm = data.get("normalizer")
    first = [] if norm is None else norm["normalizers"] if norm["type"] == "Sequence" else [norm]
    data["normalizer"] = {"type": "Sequence", "normalizers": [*first, *steps]}
    return json.dumps(data, ensure_ascii=False)


def reads_identity_as(src: str) -> str | None:
    """The word a tokenizer (its JSON) already reads identity words as: ``BLIND_TOKEN`` when
    blinded in training, the anchor when anchored (``anchor_tokenizer``); else None."""
    norm = json.loads(src).get("normalizer") or {}
    steps = norm.get("normalizers", [norm]) if norm.get("type") == "Sequence" else [norm]
    ours = blind_normalizers()[0]["pattern"]
    for step in steps:
        if step.get("type") == "Replace" and (step.get("content") == BLIND_TOKEN
                                              or step.get("pattern") == ours):
            return str(step["content"])
    return None
