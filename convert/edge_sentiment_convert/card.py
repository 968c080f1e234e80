"""The model card, generated whole from the build's figures: what a user checks first (scores
and neutral recall per split, behaviour, calibration, size, latency), then how the model was
made, then the config's ``[targets]``, each marked met or missed."""

from __future__ import annotations

from typing import Any

from .layout import Artifact

STUDENT, TFLITE, TEACHER = Artifact.STUDENT_INT8, Artifact.STUDENT_TFLITE, Artifact.TEACHER_FP32


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def _headline(r: dict[str, Any]) -> float:
    return float(r["accuracy"] if r["binary"] else r["macro_f1"])


def _neutral(r: dict[str, Any]) -> float | None:
    if r["binary"]:
        return None
    return float(r["per_class"]["neutral"]["recall"])


def scores_table(evals: dict[str, dict[str, Any]]) -> list[str]:
    student, tfl, teacher = evals[STUDENT], evals.get(TFLITE, {}), evals.get(TEACHER, {})
    lines = ["| split | student ONNX | student TFLite | teacher fp32 | neutral recall "
             "(student ONNX) | ECE (student ONNX) |", "|---|---|---|---|---|---|"]
    for split, r in student.items():
        lines.append(f"| {split} | {_pct(_headline(r))} | "
                     f"{_pct(_headline(tfl[split])) if split in tfl else ''} | "
                     f"{_pct(_headline(teacher[split])) if split in teacher else ''} | "
                     f"{_pct(_neutral(r))} | {_pct(r.get('ece'))} |")
    return lines


def behaviour_table(behaviour: dict[str, Any]) -> list[str]:
    if not behaviour:
        return ["(not run)"]
    models = list(behaviour)
    rows: dict[str, dict[str, Any]] = {}
    for model, result in behaviour.items():
        for t in result["tests"]:
            rows.setdefault(t["name"], {"meta": t})[model] = t["failure_rate"]
    lines = ["| test | capability | type | cases | " + " | ".join(models) + " |",
             "|---|---|---|---|" + "---|" * len(models)]
    for name, row in rows.items():
        meta = row["meta"]
        lines.append(f"| {name} | {meta['capability']} | {meta['kind']} | {meta['n']} | "
                     + " | ".join(_pct(row.get(m)) for m in models) + " |")
    return lines


def _calibration(ctx: dict[str, Any]) -> list[str]:
    cal = ctx.get("calibration") or {}
    if not cal:
        return ["No calibration (scores are the raw softmax)."]
    held = (f"each gap source's neutral recall at {ctx.get('min_neutral_recall', 0):.2f} or "
            "more, its macro-F1 within max_dev_gap of the teacher's and SST-2 at the "
            "min_sst2_dev target, where biases can (the mean dev score deciding among those "
            "that do)" if ctx.get("fit_to_targets") else
            f"each 3-class source's neutral recall held at "
            f"{ctx.get('min_neutral_recall', 0):.2f} or more where possible")
    text = ("The runtime computes `softmax((logits + bias) / temperature)` with the manifest's "
            "`calibration`. Biases (negative, neutral, positive) were fitted on pooled dev for "
            f"the mean dev score with {held}; the temperature for log-loss on pooled 3-class "
            "dev.")
    if any(f.get("confidence") for f in cal.values()):
        text += (" Then the confidence map: the winning class's probability p becomes "
                 "`sigmoid(slope * log(p / (1 - p)) + offset)` (held above the runner-up's, so "
                 "no label changes), fitted for the log-loss of a right label averaged over the "
                 "dev sources" + (f", each source's ECE held at {100 * ctx['confidence_max_ece']:.0f}%"
                                  " or less where it can" if ctx.get("confidence_max_ece") else "")
                 + "; the scores above are with it.")
    out = [text, ""]
    for who, f in cal.items():
        fitted = (f"; mean dev score {100 * f['before']:.1f} -> {100 * f['mean_score']:.1f}"
                  if "before" in f else "")
        mapped = (f"; confidence map slope {f['confidence'][0]:.3f}, offset "
                  f"{f['confidence'][1]:+.3f}" if f.get("confidence") else "")
        on = (f"; fitted on the dev outputs of {', '.join(f['fitted_on'])}, each a source of "
              "its own" if len(f.get("fitted_on", ())) > 1 else "")
        out.append(f"- {who}: temperature {f['temperature']:.3f}, bias "
                   f"{', '.join(f'{b:+.2f}' for b in f['bias'])}{mapped}{fitted}{on}")
    return out


def _speed(ctx: dict[str, Any]) -> list[str]:
    rounds = next(iter(ctx["speed"].values())).get("rounds", 1)
    lines = [f"`edge-sentiment bench --bundle <artifact> --runtime <runtime> --json`, each run "
             f"its own process, the models taking turns; median of {rounds} rounds; single "
             "texts, tokenization included.", "",
             "| model | p50 ms (built-in short texts) | p95 ms | p50 ms (dev texts) |",
             "|---|---|---|---|"]
    real = ctx["speed_real"][1] if ctx.get("speed_real") else {}
    for k, v in ctx["speed"].items():
        r = real.get(k, {})
        lines.append(f"| {k} | {v['p50_ms']:.3f} | {v['p95_ms']:.3f} | "
                     f"{r.get('p50_ms', float('nan')):.3f} |")
    if real:
        tokens = real[STUDENT].get("mean_tokens")
        lines += ["", f"Dev texts: `{ctx['speed_real'][0]}` ({tokens} student tokens per text "
                  "on average; the built-in samples have 9-15)."]
    return lines


def _pareto(ctx: dict[str, Any]) -> list[str]:
    teacher = ", ".join(f"{src} {100 * f1:.1f}" for src, f1 in ctx.get("teacher_dev", {}).items())
    rule = (f"the fastest candidate at most {ctx['max_dev_gap']:.1f} points behind the teacher "
            f"on the dev split of each of {', '.join(ctx['gap_sources'])}, else the best mean "
            "dev macro-F1" if ctx.get("max_dev_gap") else "the best mean dev macro-F1")
    lines = [f"Teacher fp32 dev scores before calibration (macro-F1; SST-2: accuracy): {teacher}. "
             f"Chosen: {rule}; dev splits only, never test.", "",
             "| student | params | int8 ONNX MB | p50 ms | dev macro-F1 | behind teacher |",
             "|---|---|---|---|---|---|"]
    for row in ctx["pareto"]:
        behind = row.get("dev_points_behind_teacher")
        lines.append(f"| {row['name']}{' **(chosen)**' if row.get('chosen') else ''} | "
                     f"{row['params'] / 1e6:.2f} M | {row['onnx_int8_mb']:.2f} | "
                     f"{row['p50_ms']:.3f} | {100 * row['dev_macro_f1']:.1f} | "
                     f"{'' if behind is None else f'{behind:.1f}'} |")
    return lines


def _consistency(ctx: dict[str, Any]) -> list[str]:
    c = ctx.get("consistency")
    if not c:
        return ["Not measured by this build."]
    quant = ctx.get("onnx_quant", "dynamic")
    return [f"The student int8 ONNX ({quant} activation scales) on all {c['n']} dev texts, each "
            f"alone and in calls of {c['batch']}: the same label for "
            f"{100 * c['label_agreement']:.2f}% ({c['changed']} changed), largest score "
            f"difference {c['max_score_diff']:.2g}. Reproduce on a split: `edge-sentiment eval "
            "--data <split>.tsv --batch-check`."]


def card(ctx: dict[str, Any]) -> str:
    """The whole card."""
    return "\n".join([*measured(ctx), "## How it was made", "", f"    {ctx['command']}", "",
                      *anchor(ctx), *built(ctx), *closing(ctx)]) + "\n"


def measured(ctx: dict[str, Any]) -> list[str]:
    """The title and what a user checks first: scores, behaviour, calibration, size, latency,
    agreement of the runtimes, batches."""
    return [f"# {ctx['name']} {ctx['version']}", "",
            "Three-class sentiment (negative / neutral / positive) for short English reviews and "
            "posts, for CPUs and ARM boards: int8 ONNX and int8 TFLite artifacts.", "",
            "## Scores per split", "",
            "Macro-F1 for 3-class splits; accuracy of P(positive) against P(negative) for SST-2. "
            "Reproduce a cell: `edge-sentiment eval --data <split>.tsv --runtime onnx|tflite`.",
            "", *scores_table(ctx["evals"]), "",
            "Per-class precision / recall / F1 are in `evaluation.json`.", "",
            "## Behaviour (`edge-sentiment check`)", "",
            "Failure rate per test (percent; lower is better). `edge-sentiment check --seed "
            f"{_suite_seed(ctx)} --json` gives the same figures on a CPU like the build's (another "
            "seed samples other cases; int8 kernels differ between CPUs with and without VNNI, "
            "so on another CPU kind a case or two per test can differ); the cases are in "
            "`behaviour.json`.", "",
            *behaviour_table(ctx.get("behaviour") or {}), "",
            "## Calibration", "", *_calibration(ctx), "",
            "## Size", "", *[f"- {k}: {v / 1e6:.2f} MB" for k, v in ctx["sizes"].items()], "",
            "## Latency", "", *_speed(ctx), "",
            "## ONNX int8 and TFLite int8 agreement", "",
            *[f"- {k}: {100 * v:.2f}%" for k, v in ctx["agreement"].items()], "",
            "## Alone and in batches", "", *_consistency(ctx), ""]


def built(ctx: dict[str, Any]) -> list[str]:
    """How a build made the model: its time, the candidates and the config."""
    return [f"Build time: {ctx['build_minutes']:.1f} minutes on {ctx['machine']}. "
            f"Stage seconds: {ctx['stage_seconds']}.", "", *_pareto(ctx), "",
            f"Config (`{ctx['config_name']}`):", "", "```toml", ctx["config_text"].strip(),
            "```", ""]


def closing(ctx: dict[str, Any]) -> list[str]:
    """The targets, each met or missed, the confusion images and the limits."""
    lines = ["## Targets (the config's `[targets]`)", ""]
    lines += [f"- {'met' if ok else '**missed**'}: {what}" for what, ok in targets(ctx)] \
        or ["The config sets no targets."]
    lines += ["", "## Confusion matrices (3-class test splits, summed)", ""]
    lines += [f"![{n}]({png})" for n, png in ctx.get("pngs", {}).items()]
    lines += ["", "## Limits", "",
              "English only. Trained on product reviews, tweets and film-review sentences; other "
              "domains (medical, legal, code) are untested. Texts past the bundle's "
              "`max_seq_length` tokens are truncated. The behavioural suite is this project's "
              "own; its figures are a floor, not a guarantee."]
    return lines


def anchor(ctx: dict[str, Any]) -> list[str]:
    anchor = ctx.get("identity_anchor")
    if not anchor:
        return []
    return [f"Identity words are blinded after training: the bundle's tokenizer reads each of "
            f"{ctx.get('identity_words', 'the')} religion, ethnicity, nationality, sexuality and "
            f"gender words (and the colours black and white) as \"{anchor}\", a word the "
            "student was trained with, so swapping one for another cannot change a score. "
            "Every figure above is with it.", ""]


def _gap_sources(ctx: dict[str, Any]) -> list[str]:
    teacher = ctx["evals"][TEACHER]
    return [s for s in ctx.get("gap_sources", []) if f"{s}/dev" in teacher
            and not teacher[f"{s}/dev"]["binary"]]


def _split_targets(ctx: dict[str, Any], t: dict[str, float]) -> list[tuple[str, bool]]:
    ev, out = ctx["evals"], []
    teacher = ev[TEACHER]
    for art in (STUDENT, TFLITE):
        for src in _gap_sources(ctx):
            r = ev[art][f"{src}/dev"]
            if "max_dev_gap" in t:
                gap = round(100 * (teacher[f"{src}/dev"]["macro_f1"] - r["macro_f1"]), 2)
                out.append((f"{art} within {t['max_dev_gap']:.1f} macro-F1 of the teacher on "
                            f"{src}/dev: {gap:+.2f} behind", gap <= t["max_dev_gap"]))
            if "min_neutral_recall" in t:
                rec = round(100 * r["per_class"]["neutral"]["recall"], 1)
                out.append((f"{art} neutral recall on {src}/dev {rec:.1f}% >= "
                            f"{100 * t['min_neutral_recall']:.0f}%",
                            rec >= round(100 * t["min_neutral_recall"], 1)))
        if "min_sst2_dev" in t and "sst2/dev" in ev[art]:
            acc = round(100 * ev[art]["sst2/dev"]["accuracy"], 2)
            out.append((f"{art} SST-2 dev accuracy {acc:.2f} >= {t['min_sst2_dev']:.1f}",
                        acc >= t["min_sst2_dev"]))
        if "max_dev_ece" in t:
            worst = max((r.get("ece", 0.0), k) for k, r in ev[art].items() if k.endswith("/dev"))
            out.append((f"{art} ECE on every dev split <= {100 * t['max_dev_ece']:.0f}% (worst "
                        f"{100 * worst[0]:.1f}%, {worst[1]})", worst[0] <= t["max_dev_ece"]))
    return out


def _behaviour_targets(ctx: dict[str, Any], t: dict[str, float]) -> list[tuple[str, bool]]:
    out = []
    for art, result in (ctx.get("behaviour") or {}).items():
        if not art.startswith("student"):
            continue
        tests = {x["name"]: x for x in result["tests"]}
        for key, limit in t.items():
            if not key.startswith("fail_"):
                continue
            name = key[len("fail_"):]
            chosen = [x for n, x in tests.items() if n == name or n.startswith(name + "_")]
            if not chosen:
                continue
            rate = sum(x["failures"] for x in chosen) / max(1, sum(x["n"] for x in chosen))
            out.append((f"{art} {name} failure rate {100 * rate:.1f}% <= {100 * limit:.0f}%",
                        round(rate, 4) <= limit))
    return out


def targets(ctx: dict[str, Any]) -> list[tuple[str, bool]]:
    """Each target of the config's ``[targets]`` with whether this build met it. Figures are
    rounded as printed before the comparison, so a verdict never contradicts its figure."""
    t: dict[str, float] = ctx.get("targets") or {}
    sizes, out = ctx["sizes"], []
    if "max_artifact_mb" in t:
        for k in ("student int8 ONNX", "student int8 TFLite"):
            out.append((f"{k} {sizes[k] / 1e6:.2f} MB <= {t['max_artifact_mb']:.0f} MB",
                        round(sizes[k] / 1e6, 2) <= t["max_artifact_mb"]))
    out += _split_targets(ctx, t)
    out += _behaviour_targets(ctx, t)
    if "min_agreement" in t:
        agree = ctx["agreement"].get("all_test", 0.0)
        out.append((f"ONNX and TFLite agree on {100 * agree:.2f}% of test predictions >= "
                    f"{100 * t['min_agreement']:.0f}%", agree >= t["min_agreement"]))
    c = ctx.get("consistency")
    if "min_batch_agreement" in t and c:
        out.append((f"student int8 ONNX labels the same alone and in batches on "
                    f"{100 * c['label_agreement']:.2f}% of dev texts >= "
                    f"{100 * t['min_batch_agreement']:.1f}%",
                    round(c["label_agreement"], 4) >= t["min_batch_agreement"]))
    real = ctx["speed_real"][1] if ctx.get("speed_real") else ctx["speed"]
    base = next((k for k in real if k.startswith("baseline")), None)
    if "max_baseline_p50_ratio" in t and base:
        ratio = real[STUDENT]["p50_ms"] / real[base]["p50_ms"]
        out.append((f"student int8 ONNX p50 {ratio:.2f}x that of {base} on dev texts <= "
                    f"{t['max_baseline_p50_ratio']:.1f}x",
                    round(ratio, 2) <= t["max_baseline_p50_ratio"]))
    if "max_build_minutes" in t:
        out.append((f"full build {ctx['build_minutes']:.0f} minutes <= "
                    f"{t['max_build_minutes']:.0f}",
                    round(ctx["build_minutes"]) <= t["max_build_minutes"]))
    return out


def _suite_seed(ctx: dict[str, Any]) -> int:
    """The case-sampling seed the build's suite ran with (the config's ``seed``)."""
    runs = list((ctx.get("behaviour") or {}).values())
    return int(runs[0].get("seed", 0)) if runs else 0
