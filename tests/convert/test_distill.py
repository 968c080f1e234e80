"""Distillation: feature distillation pulls the student's pooled vector towards the teacher's
sentence embedding without changing the exported graph."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tokenizers = pytest.importorskip("tokenizers")

from edge_sentiment_convert.cnn import ConvConfig, ConvStudent  # noqa: E402
from edge_sentiment_convert.distill import distill  # noqa: E402
from edge_sentiment_convert.model import Student, StudentConfig  # noqa: E402

WORDS = ["good", "bad", "fine", "great", "awful", "okay", "love", "hate", "meh", "nice"]


def word_tokenizer() -> tokenizers.Tokenizer:
    from tokenizers import models, pre_tokenizers, processors

    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, **{w: i + 4 for i, w in enumerate(WORDS)}}
    tok = tokenizers.Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return tok


def corpus(n: int = 96) -> tuple[list[str], np.ndarray]:
    """Texts and a fixed 'teacher embedding' per text: a random direction per word, summed."""
    rng = np.random.default_rng(0)
    direction = {w: rng.normal(size=16) for w in WORDS}
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 6)))) for _ in range(n)]
    feats = np.stack([sum(direction[w] for w in t.split()) for t in texts]).astype(np.float16)
    return texts, feats


@pytest.mark.parametrize("make", [
    lambda v: ConvStudent(ConvConfig(vocab_size=v, hidden=16, layers=2, emb_rank=8, max_len=16)),
    lambda v: Student(StudentConfig(vocab_size=v, hidden=16, layers=1, heads=2, intermediate=32,
                                    max_len=16)),
])
def test_feature_distillation_trains_and_leaves_the_graph_alone(make: object) -> None:
    tok = word_tokenizer()
    texts, feats = corpus()
    logits = np.zeros((len(texts), 3), dtype=np.float32)
    hard = [-1] * len(texts)
    binary = [False] * len(texts)
    torch.manual_seed(0)
    student = make(tok.get_vocab_size())  # type: ignore[operator]
    before = {k: v.shape for k, v in student.state_dict().items()}
    ids = torch.tensor([tok.encode("good bad").ids])
    distill(student, tok, texts, hard, binary, logits, epochs=4.0, batch=16, lr=1e-2,
            temperature=2.0, alpha=1.0, seed=0, features=feats, feature_weight=1.0)
    # The projection lived only in training: the student's parameters are what they were.
    assert {k: v.shape for k, v in student.state_dict().items()} == before
    assert not student.training
    assert student(ids, torch.ones_like(ids)).shape == (1, 3)


def test_feature_distillation_lowers_the_feature_loss() -> None:
    """Against the same run without it, the student's pooled vectors end closer (through a
    fresh least-squares map) to the teacher's."""
    tok = word_tokenizer()
    texts, feats = corpus()
    enc = [tok.encode(t).ids for t in texts]
    width = max(map(len, enc))
    ids = torch.tensor([e + [0] * (width - len(e)) for e in enc])
    mask = (ids != 0).long()

    def residual(weight: float) -> float:
        torch.manual_seed(0)
        student = ConvStudent(ConvConfig(vocab_size=tok.get_vocab_size(), hidden=8, layers=1,
                                         emb_rank=4, max_len=16))
        distill(student, tok, texts, [-1] * len(texts), [False] * len(texts),
                np.zeros((len(texts), 3), dtype=np.float32), epochs=20.0, batch=16, lr=1e-2,
                temperature=2.0, alpha=1.0, seed=0, features=feats, feature_weight=weight)
        with torch.no_grad():
            pooled = student.features(ids, mask).numpy()
        x = np.hstack([pooled, np.ones((len(pooled), 1))])
        target = feats.astype(np.float64)
        fit = np.linalg.lstsq(x, target, rcond=None)[0]
        return float(np.linalg.norm(x @ fit - target) / np.linalg.norm(target))

    with_features, without = residual(1.0), residual(0.0)
    assert with_features < 0.8 * without


def test_feature_distillation_needs_the_features() -> None:
    tok = word_tokenizer()
    texts, _ = corpus(8)
    student = ConvStudent(ConvConfig(vocab_size=tok.get_vocab_size(), hidden=8, layers=1,
                                     emb_rank=4, max_len=16))
    with pytest.raises(ValueError, match="teacher's embedding of every text"):
        distill(student, tok, texts, [-1] * 8, [False] * 8, np.zeros((8, 3), np.float32),
                epochs=1.0, batch=4, lr=1e-3, temperature=2.0, alpha=1.0, seed=0,
                features=None, feature_weight=1.0)
