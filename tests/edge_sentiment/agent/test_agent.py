"""Agent behaviour against a real Mosquitto: status, metrics, outages, kill -9, TLS and ACLs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_sentiment import SentimentClassifier
from edge_sentiment.agent import Agent, AgentConfig
from edge_sentiment.fleet.ops import keygen, sign_release, trust_file
from edge_sentiment.protocol import BrokerSettings
from edge_sentiment.slots import SlotStore

from .conftest import PREFIX, Broker, Watcher, make_broker, update_event

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"


def _agent(broker: Broker, state: Path, device: str, **extra: object) -> Agent:
    SlotStore(state).ensure(TINY)
    clf = SentimentClassifier.load(state / "current", runtime="onnx")
    cfg = AgentConfig(broker=broker.url, device_id=device, state_dir=state, runtime="onnx",
                      **extra)  # type: ignore[arg-type]
    return Agent(clf, cfg)


def test_status_metrics_and_stopped(broker: Broker, watcher: Watcher, tmp_path: Path) -> None:
    agent = _agent(broker, tmp_path / "s", "d1", metrics_interval_s=0.3)
    agent.start()
    online = watcher.wait_for(lambda t, b: t.endswith("d1/status") and b["state"] == "online")
    assert (online["model_version"], online["backend"], online["profile"]) == \
        ("0.0.1", "onnx", "generic-x86_64")
    assert online["agent_version"] and online["schema"] == "edge-sentiment/status/1"
    agent.clf.classify(["great", "bad", "meh"])
    metrics = watcher.wait_for(lambda t, b: t.endswith("d1/metrics") and b["count"] == 3)
    for key in ("window_start", "window_end", "latency_ms", "throughput_per_s", "labels",
                "confidence", "text_tokens", "unknown_token_rate", "drift", "uptime_s", "rss_mb",
                "model_version", "seq", "evicted"):
        assert key in metrics, key
    assert "great" not in json.dumps(metrics), "no raw text leaves the device"
    agent.stop()
    watcher.wait_for(lambda t, b: t.endswith("d1/status") and b["state"] == "stopped")


def test_app_feedback_reports_online_accuracy_and_alerts(broker: Broker, watcher: Watcher,
                                                         tmp_path: Path) -> None:
    agent = _agent(broker, tmp_path / "s", "d5", metrics_interval_s=0.3, alert_min_outcomes=6,
                   alert_min_accuracy=0.6)
    agent.start()
    try:
        preds = agent.clf.classify([f"text number {i}" for i in range(10)])
        others = [next(lab for lab in agent.clf.labels if lab != p.label) for p in preds]
        for p in preds[:2]:
            agent.feedback(p.id, p.label)
        for p, wrong in list(zip(preds, others))[2:8]:
            agent.feedback(p.id, wrong)  # the app says the model was wrong on 6 of 8
        metrics = watcher.wait_for(lambda t, b: t.endswith("d5/metrics")
                                   and b["outcomes"]["count"] == 8)
        assert metrics["outcomes"]["accuracy"] == 0.25
        assert sum(map(sum, metrics["outcomes"]["confusion"])) == 8
        alert = watcher.wait_for(lambda t, b: t.endswith("d5/alerts")
                                 and b["alert"] == "online_accuracy")
        assert alert["value"] == 0.25 and alert["threshold"] == 0.6
        assert alert["model_version"] == "0.0.1"
    finally:
        agent.stop()


def test_stop_without_a_broker_keeps_the_statuses_for_the_next_start(tmp_path: Path) -> None:
    broker = make_broker(tmp_path)  # never started: nothing listens on its port
    agent = _agent(broker, tmp_path / "s", "d8", reconnect_min_s=0.2, reconnect_max_s=0.5)
    agent.start()
    time.sleep(0.5)
    start = time.monotonic()
    agent.stop(timeout=1.0)
    assert time.monotonic() - start < 10, "stop is bounded even when nothing can be sent"
    again = _agent(broker, tmp_path / "s", "d8")
    try:
        states = [json.loads(m.payload)["state"] for m in again.outbox.peek(0, 10)]
    finally:
        again.outbox.close()
    assert states == ["online", "stopped"]


def test_last_will_reports_offline(broker: Broker, tmp_path: Path) -> None:
    state = tmp_path / "s"
    SlotStore(state).ensure(TINY)
    proc = subprocess.Popen([sys.executable, "-m", "edge_sentiment", "agent", "--broker", broker.url,
                             "--device-id", "d9", "--state-dir", str(state)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watcher = Watcher(broker)
    try:
        watcher.wait_for(lambda t, b: t.endswith("d9/status") and b["state"] == "online")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # no 'offline' status exists before the kill: only the broker's last will sends one;
        # keepalive is 30 s by default; the broker sends the will when the socket closes
        watcher.wait_for(lambda t, b: t.endswith("d9/status") and b["state"] == "offline", 40)
    finally:
        watcher.close()
        if proc.poll() is None:
            proc.kill()


def test_outage_loses_nothing_and_keeps_order(tmp_path: Path) -> None:
    # A broker with persistence and a watcher with a persistent session: what the agent sends
    # after the restart reaches the watcher even if the agent reconnects first (it used to be
    # a race between the agent's backoff and a second watcher's subscription).
    broker = make_broker(tmp_path, extra=f"allow_anonymous true\npersistence true\n"
                         f"persistence_location {tmp_path}/\n")
    broker.start()
    agent = _agent(broker, tmp_path / "s", "d2", metrics_interval_s=0.2, reconnect_min_s=1.0,
                   reconnect_max_s=2.0)
    watch = Watcher(broker, session="watch-d2")
    try:
        deadline = time.time() + 10  # subscribed once its own probe comes back
        while not watch.messages and time.time() < deadline:
            watch.client.publish(f"{PREFIX}/probe", b"{}", qos=1)
            time.sleep(0.1)
        agent.start()
        watch.wait_for(lambda t, b: t.endswith("d2/metrics"))
        broker.stop()
        time.sleep(2.0)  # about ten metrics messages are made while the broker is down
        queued = len(agent.outbox)
        restart = len(watch.messages)
        broker.start()
        watch.wait_for(lambda t, b: t.endswith("d2/metrics")
                       and b["seq"] > max(m[1]["seq"] for m in watch.messages[:restart]
                                          if isinstance(m[1], dict) and "seq" in m[1]) + 8, 30)
    finally:
        agent.stop()
        watch.close()
        broker.stop()
    assert queued >= 8, "messages made during the outage wait in the on-disk queue"
    got = [b["seq"] for t, b in watch.messages
           if t.startswith(f"{PREFIX}/devices/d2/") and isinstance(b, dict)]
    first_metrics = min(b["seq"] for t, b in watch.messages if t.endswith("d2/metrics"))
    seqs = sorted({q for q in got if q >= first_metrics})  # seq 0 is the last will
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), f"lost messages: {seqs}"
    late = [b["seq"] for t, b in watch.messages[restart:] if t.endswith("d2/metrics")]
    assert late == sorted(late) and len(late) >= 8, "queued metrics arrive later, in order"


def test_kill9_during_download_resumes(broker: Broker, watcher: Watcher, tmp_path: Path) -> None:
    key, pub = keygen(tmp_path / "keys", "k")
    trust_file([pub], 1, tmp_path / "trust.json")
    rel = tmp_path / "rel"
    sign_release(TINY, [key], "0.0.3", "stable", rel, chunk_size=4096)
    data = (rel / "bundle.tar").read_bytes()
    half = (len(data) // 4096) // 2
    import paho.mqtt.client as mqtt

    pub_client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub")
    pub_client.connect("127.0.0.1", broker.port)
    pub_client.loop_start()
    base = f"{PREFIX}/updates/stable/releases/0.0.3/chunks"
    for i in range(half):
        chunk = data[i * 4096:(i + 1) * 4096]
        pub_client.publish(f"{base}/{i}", chunk, qos=1, retain=True).wait_for_publish()
    pub_client.publish(f"{PREFIX}/updates/stable/manifest", (rel / "manifest.json").read_bytes(), qos=1,
                       retain=True).wait_for_publish()
    state = tmp_path / "state"
    cmd = [sys.executable, "-m", "edge_sentiment", "agent", "--broker", broker.url, "--device-id", "d3",
           "--state-dir", str(state), "--trust", str(tmp_path / "trust.json")]
    SlotStore(state).ensure(TINY)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    have = state / "download" / "have.json"
    deadline = time.time() + 30
    while time.time() < deadline and not (have.is_file() and len(json.loads(have.read_text())) >= half):
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(json.loads(have.read_text())) == half
    assert SentimentClassifier.load(state / "current").info.bundle["version"] == "0.0.1"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        resumed = watcher.wait_for(lambda t, b: t.endswith("d3/update") and b.get("resumed"))
        assert resumed["have"] == half
        for i in range(half, len(rel.joinpath("bundle.tar").read_bytes()) // 4096 + 1):
            pub_client.publish(f"{base}/{i}", data[i * 4096:(i + 1) * 4096], qos=1,
                               retain=True).wait_for_publish()
        assert watcher.wait_for(update_event("d3", "active"))["version"] == "0.0.3"
    finally:
        proc.terminate()
        proc.wait(10)
        pub_client.loop_stop()
    assert SlotStore(state).current_version() == "0.0.3"


def _tls_files(tmp: Path) -> dict[str, Path]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("test-ca")).issuer_name(name("test-ca"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now)
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
           .public_key(srv_key.public_key()).serial_number(2).not_valid_before(now)
           .not_valid_after(now + dt.timedelta(days=1))
           .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
               __import__("ipaddress").ip_address("127.0.0.1"))]), critical=False)
           .sign(ca_key, hashes.SHA256()))
    files = {"ca": tmp / "ca.pem", "cert": tmp / "server.pem", "key": tmp / "server.key"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(srv_key.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    return files


def test_tls_and_acl(tmp_path: Path) -> None:
    tls = _tls_files(tmp_path)
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(tmp_path / "passwd"), "fleet", "s3cret"],
                   check=True)
    (tmp_path / "acl").write_text(
        f"user fleet\ntopic readwrite #\n\n"
        f"pattern write {PREFIX}/devices/%c/#\npattern read {PREFIX}/updates/#\n")
    broker = make_broker(tmp_path, extra=f"allow_anonymous true\npassword_file {tmp_path / 'passwd'}\n"
                         f"acl_file {tmp_path / 'acl'}",
                         listener=f"cafile {tls['ca']}\ncertfile {tls['cert']}\nkeyfile {tls['key']}\n")
    broker.admin = {"username": "fleet", "password": "s3cret", "tls_ca": tls["ca"]}
    broker.start()
    watcher = Watcher(broker)
    agent = _agent(broker, tmp_path / "s", "d4", tls_ca=tls["ca"], metrics_interval_s=0.3)
    agent.start()
    try:
        watcher.wait_for(lambda t, b: t.endswith("d4/status") and b["state"] == "online")
        # the same device id may not write another device's topics: the broker drops it
        agent.link.client.publish(f"{PREFIX}/devices/d5/status", b'{"state": "forged"}', qos=1)
        agent.link.client.publish(f"{PREFIX}/updates/stable/manifest", b"{}", qos=1)
        time.sleep(1.0)
        topics = {t for t, _ in watcher.messages}
        assert f"{PREFIX}/devices/d5/status" not in topics
        assert f"{PREFIX}/updates/stable/manifest" not in topics
        rows = __import__("edge_sentiment.fleet.ops", fromlist=["x"]).fleet_status(
            BrokerSettings(broker.url, tls_ca=tls["ca"], username="fleet", password="s3cret"),
            PREFIX, wait=1.0)
        assert [r["device"] for r in rows] == ["d4"] and rows[0]["online"]
    finally:
        agent.stop()
        watcher.close()
        broker.stop()


def test_plain_client_refused_by_tls_broker(tmp_path: Path) -> None:
    tls = _tls_files(tmp_path)
    broker = make_broker(tmp_path, listener=f"cafile {tls['ca']}\ncertfile {tls['cert']}\n"
                         f"keyfile {tls['key']}\n")
    broker.start()
    try:
        from edge_sentiment.errors import ConfigError
        from edge_sentiment.fleet.ops import fleet_status

        with pytest.raises(ConfigError):
            fleet_status(BrokerSettings(f"mqtt://127.0.0.1:{broker.port}"), PREFIX, wait=0.2)
    finally:
        broker.stop()


def test_cli_quickstart_flags_only(broker: Broker, watcher: Watcher, tmp_path: Path) -> None:
    """The issue's acceptance: keygen, trust, sign, publish; a flags-only agent goes active;
    a higher release signed by an untrusted key is rejected and the model stays."""
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "edge_sentiment", *args], capture_output=True,
                              text=True, check=False, cwd=tmp_path)
    assert cli("fleet", "keygen", "--out", "keys").returncode == 0
    assert oct((tmp_path / "keys/release.key").stat().st_mode)[-3:] == "600"
    assert cli("fleet", "keygen", "--out", "rogue").returncode == 0
    assert cli("fleet", "trust", "--out", "trust.json", "keys/release.pub").returncode == 0
    assert cli("fleet", "sign", "--key", "keys/release.key", "--bundle", str(TINY), "--version",
               "7.0.7", "--channel", "stable", "--out", "rel").returncode == 0
    assert cli("fleet", "publish", "--broker", broker.url, "--release", "rel").returncode == 0
    agent = subprocess.Popen([sys.executable, "-m", "edge_sentiment", "agent", "--broker", broker.url,
                              "--device-id", "dev-a", "--state-dir", "state", "--trust", "trust.json"],
                             cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        (tmp_path / "state").mkdir(exist_ok=True)
        assert watcher.wait_for(update_event("dev-a", "active"), 40)["version"] == "7.0.7"
        watcher.wait_for(lambda t, b: t.endswith("dev-a/status") and b.get("model_version") == "7.0.7")
        status = cli("fleet", "status", "--broker", broker.url, "--json")
        assert status.returncode == 0
        (row,) = json.loads(status.stdout)
        assert (row["device"], row["online"], row["model_version"]) == ("dev-a", True, "7.0.7")
        assert cli("fleet", "sign", "--key", "rogue/release.key", "--bundle", str(TINY), "--version",
                   "7.0.9", "--out", "rel2").returncode == 0
        assert cli("fleet", "publish", "--broker", broker.url, "--release", "rel2").returncode == 0
        rejected = watcher.wait_for(update_event("dev-a", "rejected"))
        assert rejected["reason"] == "unknown_key" and "untrusted key" in rejected["detail"]
    finally:
        agent.terminate()
        agent.wait(10)
    assert SlotStore(tmp_path / "state").current_version() == "7.0.7"
