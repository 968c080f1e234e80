"""edge-sentiment-convert: the build stage (teacher, distillation, export, evaluation, bundle).

Its own distribution (``pip install -e ./convert`` from a checkout), so a device install of
``edge-sentiment`` carries none of it. Run ``edge-sentiment-convert build --config C --data DIR
--out DIR``; see docs/convert.md.
"""

__version__ = "0.1.0"
