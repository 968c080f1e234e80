"""The local REST API over the classifier (``pip install 'edge-sentiment[serve]'``)."""
