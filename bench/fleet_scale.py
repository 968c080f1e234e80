"""The fleet side at scale: the controller and the exporter against simulated devices.

    python bench/fleet_scale.py --devices 1000,10000 --out docs/fleet_scale.md

For each fleet size: a local Mosquitto (own config, free port), three real agents (each its own
``edge-sentiment agent`` process with a trust naming the rollout role), ``fleet simulate`` with
that many devices in a child process (statuses retained, metrics every 10 s, installs and health verdicts
as a rollout reaches them), ``fleet exporter`` in a child process, and the controller in this
process, timed tick by tick. A rollout 1% -> 10% -> 100% (bake 5 s) runs to the end.
Reported: whether the real agents ended on the release, the rollout's wall time, the
controller's tick time (median and max), peak RSS and CPU share during the rollout, and the
exporter's scrape time, peak RSS and CPU share with every device's series.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).parents[1]
TINY = ROOT / "tests" / "fixtures" / "tiny_bundle"
PREFIX = "edge-sentiment"
REAL_AGENTS = 3
sys.path.insert(0, str(ROOT / "scripts"))
from local_broker import free_port, start_mosquitto  # noqa: E402  (scripts/local_broker.py)


def _peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(devices: int, work: Path) -> dict[str, float | str]:
    from edge_sentiment.cli import main as cli
    from edge_sentiment.fleet.controller import Controller, ControllerDB
    from edge_sentiment.fleet.ops import keygen, publish_release, sign_release, trust_file
    from edge_sentiment.protocol import BrokerSettings
    from edge_sentiment.slots import SlotStore

    exp_port = free_port()
    broker, url = start_mosquitto(work, "max_queued_messages 0\n")
    release_key, release_pub = keygen(work / "keys", "release")
    rollout_key, rollout_pub = keygen(work / "keys", "rollout")
    trust_file([release_pub], 1, work / "trust.json", rollout_pubs=[rollout_pub])
    sign_release(TINY, [release_key], "0.0.2", "stable", work / "rel", chunk_size=16384)
    publish_release(BrokerSettings(url), work / "rel", PREFIX)
    base = [sys.executable, "-m", "edge_sentiment", "fleet"]
    (work / "agent.toml").write_text("health_timeout_s = 1\nhealth_min_seconds = 0\n"
                                     "runtime = \"onnx\"\n")
    agents = []
    for i in range(REAL_AGENTS):  # real agents beside the simulated fleet, installing for real
        state = work / f"agent-{i}"
        SlotStore(state).ensure(TINY)
        agents.append((state, subprocess.Popen(
            [sys.executable, "-m", "edge_sentiment", "agent", "--config", str(work / "agent.toml"),
             "--broker", url, "--device-id", f"real-{i}", "--state-dir", str(state), "--trust",
             str(work / "trust.json"), "--metrics-interval", "5"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    exporter = subprocess.Popen([*base, "exporter", "--broker", url, "--port", str(exp_port)])
    sim = subprocess.Popen([*base, "simulate", "--broker", url, "--devices", str(devices),
                            "--seconds", "600", "--metrics-interval", "10",
                            "--health-delay", "1"], stdout=subprocess.PIPE)
    db = ControllerDB(work / "ctl.sqlite")
    ctl = Controller(BrokerSettings(url), PREFIX, db, rollout_key)
    ctl.start()
    try:
        time.sleep(5.0)  # the statuses arrive
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        exp_cpu0 = _cpu_s(exporter.pid)
        ticks = []
        for _ in range(3):
            t0 = time.perf_counter()
            ctl.tick()
            ticks.append(time.perf_counter() - t0)
        cli(["fleet", "rollout", "start", "--db", str(work / "ctl.sqlite"), "--release",
             str(work / "rel"), "--phases", "1,10,100", "--bake", "5", "--min-devices", "3"])
        t_start = time.perf_counter()
        while db.rollouts()[0][1].state not in ("done", "aborted") and \
                time.perf_counter() - t_start < 300:
            t0 = time.perf_counter()
            ctl.tick()
            ticks.append(time.perf_counter() - t0)
            time.sleep(0.5)
        wall = time.perf_counter() - t_start
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        ctl_cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        exp_cpu = _cpu_s(exporter.pid) - exp_cpu0
        scrapes = []
        for _ in range(5):
            t0 = time.perf_counter()
            body = urllib.request.urlopen(f"http://127.0.0.1:{exp_port}/metrics", timeout=60).read()
            scrapes.append(time.perf_counter() - t0)
        for _ in range(40):  # the real agents' health trials end a second after they install
            if all(SlotStore(st).state().get("good_version") == "0.0.2" for st, _ in agents):
                break
            time.sleep(0.5)
        real = sum(SlotStore(st).state().get("good_version") == "0.0.2" for st, _ in agents)
        rollout_state = db.rollouts()[0][1].state
        return {"devices": devices, "real_agents_on_new": f"{real} of {len(agents)}",
                "state": rollout_state, "rollout_s": round(wall, 1),
                "tick_ms_median": round(1000 * statistics.median(ticks), 1),
                "tick_ms_max": round(1000 * max(ticks), 1),
                "controller_cpu_share": round(ctl_cpu / wall, 3),
                "exporter_cpu_share": round(exp_cpu / wall, 3),
                "controller_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                           / 1024, 1),
                "exporter_scrape_ms": round(1000 * statistics.median(scrapes), 1),
                "exporter_rss_mb": round(_peak_kb(exporter.pid) / 1024, 1),
                "scrape_kb": round(len(body) / 1024)}
    finally:
        ctl.stop()
        for proc in (*(p for _, p in agents), sim, exporter, broker):
            proc.terminate()
            proc.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", default="1000,10000")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = []
    for n in (int(x) for x in args.devices.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(run(n, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        lines = ["# Fleet side at scale", "",
                 f"`python bench/fleet_scale.py --devices {args.devices} --out {args.out}` "
                 f"on {os.cpu_count()} cores; the simulator, Mosquitto, the exporter and the "
                 "controller share them. A rollout 1% -> 10% -> 100%, bake 5 s, 1 s health windows.",
                 f"{REAL_AGENTS} real agents install beside them for real.",
                 "", "| devices | outcome | real agents on 0.0.2 | rollout s | controller tick ms "
                 "(median / max) | controller peak RSS MB | exporter scrape ms | exporter peak "
                 "RSS MB | scrape kB | controller / exporter CPU (cores) |",
                 "|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['devices']:,} | {r['state']} | {r['real_agents_on_new']} | "
                  f"{r['rollout_s']} | {r['tick_ms_median']}"
                  f" / {r['tick_ms_max']} | {r['controller_rss_mb']} | {r['exporter_scrape_ms']}"
                  f" | {r['exporter_rss_mb']} | {r['scrape_kb']} | {r['controller_cpu_share']} / "
                  f"{r['exporter_cpu_share']} |" for r in rows]
        args.out.write_text("\n".join(lines) + "\n" + SCALING)
    return 0


SCALING = """
## Past one broker

The controller's work per tick is one pass over the devices it has heard from (a bucket hash
and a dictionary lookup each) plus SQLite reads of the outcomes of one version: linear in the
fleet, with no per-device network traffic of its own; its inputs are the devices' own update
and status messages. For a fleet of a million:

- **Broker**: a clustered broker (EMQX, or Mosquitto bridged by region) carries the device
  connections; the topic tree already splits by device, and the ACLs are per client.
- **Controller**: one controller per channel is enough for the decisions (they are a few per
  phase), but its intake should be shared: subscribe with MQTT 5 shared subscriptions
  (`$share/controllers/<prefix>/devices/+/update`) across several intake processes writing the
  outcomes into PostgreSQL (the `fleet collect` database layer), and let one decider read the
  counts with SQL instead of holding every device in memory.
- **Exporter**: per-device series do not scale to a million in one Prometheus; shard exporters
  by device-id prefix (or shared subscriptions), and aggregate per model version and profile
  with recording rules, keeping per-device series only for devices that alert.
- What stays as is: the directive (one retained message per channel, whatever the fleet size)
  and each device's bucket, computed on the device.
"""

if __name__ == "__main__":
    raise SystemExit(main())
