"""The models the student is compared with, each behind ``classify(texts) -> [Prediction]``.

- VADER (lexicon rules; compound >= 0.05 positive, <= -0.05 negative, else neutral);
- fastText, supervised with word bigrams, trained here on the 3-class train splits;
- TF-IDF (word 1-2 grams and char 2-5 grams) + logistic regression, trained here likewise;
- the fine-tuned teacher as ONNX fp32 and int8, from a conversion build's eval bundles.

The trained peers see exactly the train splits the student's teacher saw (SST-2 left out: it
has no neutral label). Their size is that of the fitted model saved to disk.
"""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path
from typing import Any

from edge_sentiment import Prediction
from edge_sentiment.evaluate import read_labeled_tsv
from edge_sentiment.manifest import LABELS

TRAIN_SOURCES = ("amazon_marc_en", "amazon_alexa", "twitter_us_airline", "sst5_3class",
                 "tweeteval_sentiment")


def train_rows(data: Path) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    labels: list[str] = []
    for src in TRAIN_SOURCES:
        t, y = read_labeled_tsv(data / src / "train.tsv")
        texts += t
        labels += y
    return texts, labels


def _prediction(probs: dict[str, float]) -> Prediction:
    label = max(probs, key=probs.__getitem__)
    return Prediction(label, probs[label], probs)


class Vader:
    labels = LABELS

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.sia = SentimentIntensityAnalyzer()
        import vaderSentiment

        folder = Path(str(vaderSentiment.__file__)).parent
        self.size: int = sum(p.stat().st_size for p in folder.glob("*.txt"))

    def classify(self, texts: list[str]) -> list[Prediction]:
        out = []
        for t in texts:
            c = self.sia.polarity_scores(t)["compound"]
            label = "positive" if c >= 0.05 else "negative" if c <= -0.05 else "neutral"
            pos = (c + 1) / 2  # the binary decision: positive iff compound >= 0
            out.append(Prediction(label, 1.0, {"negative": 1 - pos, "neutral": 0.0,
                                               "positive": pos}))
        return out


class FastText:
    labels = LABELS

    def __init__(self, data: Path, cache: Path) -> None:
        import fasttext

        path = cache / "fasttext.ftz"
        if not path.is_file():
            texts, labels = train_rows(data)
            with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
                for t, y in zip(texts, labels):
                    f.write(f"__label__{y} {' '.join(t.lower().split())}\n")
            model = fasttext.train_supervised(f.name, wordNgrams=2, epoch=10, lr=0.5, dim=50,
                                              seed=13, thread=1, verbose=0)
            model.quantize(input=f.name, retrain=True, qnorm=True, cutoff=100000, verbose=0)
            model.save_model(str(path))
            Path(f.name).unlink()
        self.model = fasttext.load_model(str(path))
        self.size = path.stat().st_size

    def classify(self, texts: list[str]) -> list[Prediction]:
        out = []
        for t in texts:
            names, probs = self.model.predict(" ".join(t.lower().split()), k=len(LABELS))
            scores = {lab: 0.0 for lab in LABELS}
            for n, p in zip(names, probs):
                scores[n.removeprefix("__label__")] = float(p)
            out.append(_prediction(scores))
        return out


class TfidfLogReg:
    labels = LABELS

    def __init__(self, data: Path, cache: Path) -> None:
        path = cache / "tfidf_logreg.pkl"
        if not path.is_file():
            from sklearn.feature_extraction.text import TfidfVectorizer
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline, make_union

            texts, labels = train_rows(data)
            features = make_union(
                TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=3,
                                sublinear_tf=True))
            model = make_pipeline(features, LogisticRegression(max_iter=2000, C=4.0))
            model.fit(texts, labels)
            path.write_bytes(pickle.dumps(model))
        self.model: Any = pickle.loads(path.read_bytes())  # written by this script above
        self.size = path.stat().st_size

    def classify(self, texts: list[str]) -> list[Prediction]:
        probs = self.model.predict_proba(texts)
        classes = list(self.model.classes_)
        return [_prediction({lab: float(row[classes.index(lab)]) for lab in LABELS})
                for row in probs]
