"""Start-up time of ``edge-sentiment classify hello``: venv, one-folder and one-file builds,
side by side in one run (paired: each round runs all three in turn), median wall time.

    python packaging/startup_timing.py --onefile dist/edge-sentiment \\
        --onedir /opt/edge-sentiment/edge-sentiment [--runs 7] [--drop-caches] [--out F.json]

The venv command is the ``edge-sentiment`` script next to this Python. ``--drop-caches`` (root)
empties the page cache before every run: the SD-card case. Prints a Markdown table; ``--out``
writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def _once(cmd: list[str], drop: bool) -> float:
    if drop:
        _drop_caches()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    t0 = time.perf_counter()
    done = subprocess.run([*cmd, "classify", "hello"], capture_output=True, text=True, env=env,
                          check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0 or not done.stdout.startswith(("negative", "neutral", "positive")):
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.strip()[-300:]}")
    return wall


def measure(kinds: dict[str, list[str]], runs: int, drop: bool) -> dict[str, object]:
    for cmd in kinds.values():  # one warm-up each (first start after a build or install)
        _once(cmd, False)
    walls: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(runs):
        for kind, cmd in kinds.items():
            walls[kind].append(_once(cmd, drop))
    venv = statistics.median(walls["venv"])
    return {"runs": runs, "drop_caches": drop, "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "kinds": {k: {"median_s": round(statistics.median(v), 3),
                          "walls_s": [round(x, 3) for x in v],
                          "x_venv": round(statistics.median(v) / venv, 2)}
                      for k, v in walls.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--onefile", type=Path, required=True)
    p.add_argument("--onedir", type=Path, required=True, help="the one-folder launcher")
    p.add_argument("--venv", type=Path, default=Path(sys.executable).parent / "edge-sentiment")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--drop-caches", action="store_true")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    kinds = {"venv": [str(args.venv)], "onedir": [str(args.onedir)],
             "onefile": [str(args.onefile)]}
    report = measure(kinds, args.runs, args.drop_caches)
    print(f"| build | median wall (s) | x venv |  ({report['runs']} paired runs, "
          f"{report['machine']}, {report['cpus']} CPUs, "
          f"{'cold' if args.drop_caches else 'warm'} page cache)\n|---|---|---|")
    for kind, fig in report["kinds"].items():  # type: ignore[attr-defined]
        print(f"| {kind} | {fig['median_s']:.2f} | {fig['x_venv']:.2f} |")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
