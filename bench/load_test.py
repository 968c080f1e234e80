"""Load test: drive POST /v1/classify of a real `edge-sentiment serve` from a second process.

    python bench/load_test.py --seconds 60 --out docs/load_test.json

Starts the server on a free loopback port (one uvicorn worker, default bundle), then runs
`wrk` (Debian package `wrk`) with keep-alive connections for --seconds, and reports
requests/s, latency percentiles and errors (non-2xx responses plus socket errors).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))
from local_broker import free_port  # scripts/local_broker.py

LUA = """
wrk.method = "POST"
wrk.body = '{"text": "The battery died after two days but support replaced it quickly"}'
wrk.headers["Content-Type"] = "application/json"
"""


def _ms(value: str) -> float:
    num, unit = float(re.sub(r"[a-z]+$", "", value)), re.sub(r"^[0-9.]+", "", value)
    return num * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(out: str) -> dict[str, float]:
    pct = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"^\s+(\d+)%\s+([0-9.]+[a-z]+)", out, re.M)}
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return {"requests": total, "requests_per_s": rps, "p50_ms": pct.get("50", -1),
            "p90_ms": pct.get("90", -1), "p99_ms": pct.get("99", -1), "errors": errors}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--server-threads", type=int, default=1,
                    help="inference threads of the server (wrk and uvicorn need the other core)")
    ap.add_argument("--bundle", type=Path, help="bundle to serve (default: the packaged one)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "edge_sentiment", "serve", "--port", str(port),
                               "--threads", str(args.server_threads),
                               *(["--bundle", str(args.bundle)] if args.bundle else [])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
            fh.write(LUA)
        cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
               "-s", fh.name, f"http://127.0.0.1:{port}/v1/classify"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        server.terminate()
        server.wait(10)
    result = {"seconds": args.seconds, "connections": args.connections, **parse_wrk(out),
              "server": f"edge-sentiment serve (1 uvicorn worker, {args.bundle or 'default bundle'}, "
                        "ONNX int8, "
                        f"{args.server_threads} inference thread(s))",
              "client": f"wrk -t{args.threads} -c{args.connections} (second process, loopback)"}
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
