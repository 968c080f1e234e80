"""edge-sentiment: offline sentiment classification for edge devices.

>>> from edge_sentiment import SentimentClassifier
>>> clf = SentimentClassifier.load()
>>> clf.classify("The battery died after two days").label
'negative'
"""

from .classifier import ClassifierInfo, Prediction, SentimentClassifier
from .errors import (
                     BackendError,
                     BundleError,
                     ConfigError,
                     EdgeSentimentError,
                     FeedbackError,
                     InputError,
                     RuntimeUnavailableError,
                     SelfTestError,
)

__version__ = "0.1.0"

__all__ = [
                     "BackendError",
                     "BundleError",
                     "ClassifierInfo",
                     "ConfigError",
                     "EdgeSentimentError",
                     "FeedbackError",
                     "InputError",
                     "Prediction",
                     "RuntimeUnavailableError",
                     "SelfTestError",
                     "SentimentClassifier",
                     "__version__",
]
