"""The ``edge-sentiment`` command: thin over the library.

Exit codes: 0 ok, 1 unexpected error, 2 usage or input error, 3 bundle error,
4 runtime unavailable, 5 backend or self-test failure, 6 profile error,
7 update rejected. Errors print one line on stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import __version__, logs
from .backends import RUNTIME_CHOICES
from .cli_args import positive_int
from .errors import EdgeSentimentError, InputError, missing_extra

log = logging.getLogger(__name__)
Handler = Callable[[argparse.Namespace], int]


def _out(obj: Any, stream: TextIO | None = None) -> None:
    print(json.dumps(obj, ensure_ascii=False), file=stream or sys.stdout)


def _load_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", help="bundle directory or .tar (default: the packaged one)")
    p.add_argument("--runtime", default="auto", choices=RUNTIME_CHOICES)
    p.add_argument("--profile", default="auto", help="firmware profile name (default: detect)")
    p.add_argument("--provider", help="ONNX Runtime provider or tflite xnnpack|cpu")
    p.add_argument("--threads", type=positive_int, help="inference threads (default: profile)")
    p.add_argument("--json", action="store_true", help="machine-readable output")



def _classifier(args: argparse.Namespace) -> Any:
    from .classifier import SentimentClassifier

    return SentimentClassifier.load(bundle=args.bundle, runtime=args.runtime, profile=args.profile,
                                    threads=args.threads, provider=args.provider)


def _stdin_texts() -> list[str]:
    texts = []
    for no, raw in enumerate(sys.stdin.buffer, start=1):
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise InputError(f"stdin line {no}: not valid UTF-8 (byte {exc.start})") from exc
        if line.strip():
            texts.append(line)
    return texts


def cmd_classify(args: argparse.Namespace) -> int:
    texts = args.text or _stdin_texts()
    if not texts:
        raise InputError("no text given: pass TEXT arguments or lines on stdin")
    clf = _classifier(args)
    for text, pred in zip(texts, clf.classify(texts)):
        if args.json:
            _out({"text": text, "label": pred.label, "score": round(pred.score, 6),
                  "scores": {k: round(v, 6) for k, v in pred.scores.items()}})
        else:
            print(f"{pred.label}\t{pred.score:.3f}\t{text}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import batch_consistency, evaluate, read_labeled_tsv

    texts, gold = read_labeled_tsv(Path(args.data))
    clf = _classifier(args)
    show = not args.json and sys.stderr.isatty()
    result, _ = evaluate(clf, texts, gold, progress=_progress if show else None)
    if show:
        print(file=sys.stderr)
    result["bundle_version"] = clf.info.bundle["version"]
    result["backend"] = clf.info.backend
    if args.batch_check:
        result["batch_consistency"] = batch_consistency(clf, texts)
    if args.json:
        _out(result)
        return 0
    kind = "binary (P(positive) vs P(negative))" if result["binary"] else "3-class"
    print(f"n={result['n']}  scoring={kind}  backend={clf.info.backend}")
    print(f"accuracy={result['accuracy']:.4f}  macro_f1={result['macro_f1']:.4f}  "
          f"macro_recall={result['macro_recall']:.4f}  ece={result['ece']:.4f}")
    for lab, m in result["per_class"].items():
        print(f"  {lab:<9} P={m['precision']:.3f} R={m['recall']:.3f} F1={m['f1']:.3f} "
              f"n={m['support']}")
    labels = result["confusion"]["labels"]
    print("confusion (rows gold, columns predicted): " + " ".join(labels))
    for lab, row in zip(labels, result["confusion"]["matrix"]):
        print(f"  {lab:<9} " + " ".join(f"{v:>6}" for v in row))
    if args.batch_check:
        c = result["batch_consistency"]
        print(f"alone vs batches of {c['batch']}: same label {c['label_agreement']:.2%} "
              f"({c['changed']} changed), largest score difference {c['max_score_diff']:.3g}")
    return 0


def _progress(done: int, total: int) -> None:
    print(f"\reval: {done}/{total} texts", end="", file=sys.stderr, flush=True)


def cmd_check(args: argparse.Namespace) -> int:
    from .check import format_table, run_suite

    if args.seed < 0:
        raise InputError("--seed must be >= 0")
    clf = _classifier(args)
    result = run_suite(clf, seed=args.seed)
    if args.json:
        _out({**result.to_json(), "bundle_version": clf.info.bundle["version"],
              "backend": clf.info.backend})
        return 0
    print(f"behavioural suite, seed {args.seed}: {clf.info.bundle['name']} "
          f"{clf.info.bundle['version']} on {clf.info.backend}")
    print(format_table(result, examples=not args.no_examples))
    return 0


def cmd_capture(args: argparse.Namespace) -> int:
    from .capture import CaptureLimits, SampleStore

    if not args.state_dir.is_dir():
        raise InputError(f"--state-dir {args.state_dir}: no such folder")
    path = args.state_dir / "samples.sqlite"
    rows: list[dict[str, Any]] = []
    purged = 0
    if path.is_file():
        store = SampleStore(path, CaptureLimits())
        if args.action == "purge":
            purged = store.purge()
        else:
            rows = store.rows()
        store.close()
    if args.action == "purge":
        if args.json:
            _out({"purged": purged, "store": str(path)})
        else:
            print(f"purged {purged} samples from {path}")
    elif args.json:
        _out({"samples": rows})
    else:
        for row in rows:
            print(f"{row['id']}\t{row['kind']}\t{row['predicted']}\t{row['label'] or '-'}\t"
                  f"{row['text']}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .bundle import open_bundle
    from .classifier import plan_for, resolve_request
    from .hardware import detect

    if args.sysroot is not None and not Path(args.sysroot).is_dir():
        raise InputError(f"--sysroot {args.sysroot}: no such folder")
    runtime, profile_name = resolve_request(args.runtime, args.profile, args.threads)
    facts = detect(args.sysroot)
    bundle = open_bundle(args.bundle)
    profile, plan = plan_for(facts, bundle, runtime, profile_name, args.threads, args.provider)
    result: dict[str, Any] = {"version": __version__, "hardware": facts.to_json(),
                              "profile": profile.name, "profile_detail": profile.to_json(),
                              "plan": plan.to_json(), "bundle": bundle.summary()}
    first = plan.candidates[0]
    result.update(backend=first.backend, provider=first.provider, threads=first.threads)
    if args.sysroot is None:  # only this machine can actually load the model
        clf = _classifier(args)
        result.update(backend=clf.info.backend, provider=clf.info.provider,
                      threads=clf.info.threads, loaded=clf.info.to_json())
    if args.json:
        _out(result)
        return 0
    print(f"edge-sentiment {__version__}")
    print(f"hardware: {facts.arch}, {facts.cores} cores, {facts.memory_mb} MB, "
          f"board={facts.board_model or '-'}")
    print(f"profile:  {profile.name} ({profile.description})")
    print(f"backend:  {result['backend']} / {result['provider']} / {result['threads']} threads")
    print("plan:")
    for c in plan.candidates:
        print(f"  + {c.backend}/{c.provider}: {c.reason}")
    for r in plan.rejected:
        print(f"  - {r.backend}/{r.provider or '*'}: {r.reason}")
    print(f"bundle:   {bundle.manifest.name} {bundle.manifest.version}"
          f"{' (PLACEHOLDER)' if bundle.manifest.placeholder else ''}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import SAMPLE_TEXTS, run_bench
    from .evaluate import read_labeled_tsv

    if args.n < 1:
        raise InputError("--n must be >= 1")
    texts = read_labeled_tsv(Path(args.texts))[0] if args.texts else SAMPLE_TEXTS
    result = run_bench({"bundle": args.bundle, "runtime": args.runtime, "profile": args.profile,
                        "threads": args.threads, "provider": args.provider}, n=args.n, texts=texts)
    if args.json:
        _out(result)
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-sentiment", description="Offline sentiment "
                                     "classification for edge devices.")
    parser.add_argument("--version", action="store_true", dest="show_version",
                        help="print versions and exit")
    parser.add_argument("--debug", action="store_true", help="log verbosely; show tracebacks")
    parser.add_argument("--log-format", choices=logs.FORMATS, default="text",
                        help="text (default) or json: one object per line on stderr")
    parser.add_argument("--log-level", choices=logs.LEVELS,
                        help="default: warning for text, info for json")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("classify", help="classify texts (arguments, else stdin lines)")
    _load_args(p)
    p.add_argument("text", nargs="*")
    p.set_defaults(func=cmd_classify)
    p = sub.add_parser("eval", help="score a labelled TSV (header text<TAB>label)")
    _load_args(p)
    p.add_argument("--data", required=True)
    p.add_argument("--batch-check", action="store_true",
                   help="also classify each text alone and compare with batched results")
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser("check", help="behavioural test suite: failure rate per capability")
    _load_args(p)
    p.add_argument("--seed", type=int, default=0, help="case sampling seed (default 0)")
    p.add_argument("--no-examples", action="store_true", help="only the table")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("info", help="hardware facts, profile, backend plan, bundle")
    _load_args(p)
    p.add_argument("--sysroot", help="read hardware facts under this root (default: "
                   "$EDGE_SENTIMENT_SYSROOT, else /)")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("bench", help="latency, throughput, peak RSS, load time")
    _load_args(p)
    p.add_argument("--n", type=int, default=200, help="single-text runs")
    p.add_argument("--texts", help="time these texts (a labelled TSV, header text<TAB>label, "
                   "such as a dev split) instead of the built-in short samples")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("capture", help="the agent's captured samples: list or purge them")
    p.add_argument("action", choices=("list", "purge"))
    p.add_argument("--state-dir", type=Path, required=True, help="the agent's state folder")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_capture)
    for name, module in (("agent", "edge_sentiment.agent.cli"),
                         ("fleet", "edge_sentiment.fleet.cli"),
                         ("serve", "edge_sentiment.serve.cli")):
        try:
            import importlib
            importlib.import_module(module).add_parser(sub)
        except ImportError as exc:
            p = sub.add_parser(name, help=f"(unavailable: {exc.name} missing)")
            p.set_defaults(func=_missing(name, str(exc.name)))
    return parser


def _missing(name: str, module: str) -> Handler:
    extra = "serve" if name == "serve" else "agent"

    def run(args: argparse.Namespace) -> int:
        raise missing_extra(f"'{name}' needs {module}, which", extra)
    return run


# The optional faces, the extra each needs and the top-level modules of that extra.
FACE_EXTRAS = {"serve": ("serve", {"fastapi", "uvicorn", "starlette", "prometheus_client"}),
               "agent": ("agent", {"paho", "cryptography", "pydantic"}),
               "fleet": ("agent", {"paho", "cryptography", "pydantic", "prometheus_client"})}


def _call(args: argparse.Namespace) -> int:
    """Run the handler; a face whose extra is missing is our one-line error (exit 4)."""
    try:
        return int(args.func(args))
    except ImportError as exc:
        extra, modules = FACE_EXTRAS.get(args.command, ("", set()))
        if extra and (exc.name or "").split(".")[0] in modules:
            raise missing_extra(f"'{args.command}' needs {exc.name}, which", extra) from exc
        raise


def _version() -> str:
    from .bundle import open_bundle

    try:
        bundle = open_bundle(None).manifest
        extra = f", default bundle {bundle.name} {bundle.version}"
    except EdgeSentimentError as exc:
        extra = f", default bundle unreadable: {exc}"
    return f"edge-sentiment {__version__}{extra}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for usage errors
        return int(exc.code or 0)
    logs.configure(args.log_format, args.log_level, args.debug)
    if args.show_version:
        print(_version())
        return 0
    if not getattr(args, "func", None):
        parser.print_usage(sys.stderr)
        return 2
    try:
        return _call(args)
    except BrokenPipeError:  # stdout closed early (| head): end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except EdgeSentimentError as exc:
        if args.debug:
            log.exception("failed")
        if args.log_format == "json":
            log.error("%s", exc, extra={"event": "error"})
        else:
            print(f"edge-sentiment: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
