"""PyInstaller entry point for the one-file ``edge-sentiment`` binary."""

import sys

from edge_sentiment.cli import main

if __name__ == "__main__":
    sys.exit(main())
