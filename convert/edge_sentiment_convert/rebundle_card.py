"""The card of a rebundled bundle (``rebundle.py``): the measured sections of a build's card,
then how it was made from its parent, with the parent card's own "How it was made"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import card as cards

if TYPE_CHECKING:
    from edge_sentiment.bundle import Bundle

    from .rebundle import RebundleJob


def rebundle_card(ctx: dict[str, Any]) -> str:
    """The whole card."""
    job: RebundleJob = ctx["job"]
    parent: Bundle = ctx["parent"]
    pm = parent.manifest
    how = ["## How it was made", "",
           f"    edge-sentiment-convert rebundle --bundle <{pm.name} {pm.version}> --version "
           f"{job.version} --config {job.config_path} --data <shared/data> --out {job.out}", "",
           *_files(ctx, parent), *cards.anchor(ctx),
           f"Every student figure above was measured with these files; the teacher's are "
           f"{pm.version}'s (its teacher is untouched). Made in {ctx['minutes']:.1f} minutes on "
           f"{ctx['machine']}.", "",
           f"### How {pm.version} was made (from its card)", "", *_parent_how(parent), ""]
    return "\n".join([*cards.measured(ctx), *how, *cards.closing(ctx)]) + "\n"


def _files(ctx: dict[str, Any], parent: Bundle) -> list[str]:
    pm, made = parent.manifest, ctx.get("made") or {}
    kept = ", ".join(f"`{a.file}` (sha256 {a.sha256[:16]}...)" for a in pm.artifacts)
    if not made:
        return [f"The model files of {pm.name} {pm.version}, unchanged: {kept}; its "
                "calibration, unchanged.", ""]
    r = made["recovered"]
    onnx = next(a for a in pm.artifacts if a.runtime == "onnx")
    tuned = made.get("finetune") or {}
    lead = "Fine-tuned without the teacher" if tuned else "No retraining"
    lines = [f"{lead}: {pm.version}'s trained weights, read back from its int8 ONNX file "
             f"`{onnx.file}` (sha256 {onnx.sha256[:16]}...) into the student's torch module, "
             "which gives the same label as that file on "
             f"{100 * r['clear_agreement']:.1f}% of the {r['clear']} of {r['n']} dev texts the "
             f"file decides by a clear margin ({100 * r['label_agreement']:.1f}% of all; largest "
             f"logit difference {r['max_logit_diff']:.3f}, int8 activations alone), "
             + ("fine-tuned, " if tuned else "") + "then exported again by the build's own "
             "stages:"]
    if tuned:
        lines.append(_finetune_line(tuned))
    if made.get("onnx_quant") == "static":
        lines.append(f"- ONNX: static int8 activations, graph `{made['onnx_graph']}` "
                     "(scales fitted once on 512 transfer texts: a text gets the same scores "
                     "alone and in any batch);")
    if made.get("tflite_lengths"):
        lines.append(f"- TFLite: `{made.get('tflite_mode', '')}` int8, one signature per length "
                     f"{made['tflite_lengths']} (a text runs in the shortest that holds it); dev "
                     "agreement with the new ONNX file by scheme: " + ", ".join(
                         f"{k} {100 * v:.2f}%" for k, v in made.get("tflite_agreement", {}).items())
                     + ";")
    lines += ["- calibration: fitted again on pooled dev (above)." if "calibration" in made
              else f"- calibration: {pm.version}'s, unchanged.", ""]
    return lines


def _finetune_line(t: dict[str, Any]) -> str:
    rule = (f"plus the negation rule on short texts: {t['ruled']} negated copies (a negation "
            f"added) of transfer texts of at most {t['max_words']} words that it read as "
            f"negative, read as negative too, each {t['repeat']} times with target "
            f"{t['negation_target']} (convert/finetune.py)" if t["negation_target"]
            else "no negation rule")
    typos = (f", and {t['typos']:,} misspelt copies of transfer texts (letters swapped, "
             "dropped, doubled or hit on a neighbouring key) learning its own logits for the "
             "clean text" if t.get("typos") else "")
    praise = (f", {t['praised']} negated copies of short transfer texts it read as positive and "
              f"not read as negative, each {t['repeat']} times with target "
              f"{t['positive_target']} (convert/rules.py)" if t.get("positive_target") else "")
    ratings = (f", {t['ratings']:,} star ratings alone or after short texts it read as neutral, "
               "learning the targets of convert/rules.py" if t.get("ratings") else "")
    return (f"- fine-tuning (`[finetune]`): {t['epochs']} epochs at lr {t['lr']} over "
            f"{t['rows']:,} rows, the build's student rows with the student's own logits as "
            f"soft targets (what it knows stays), {rule}{praise}{ratings}{typos}; "
            f"{t['minutes']} minutes;")


def _parent_how(parent: Bundle) -> list[str]:
    """The parent card's "How it was made" section, its headings one level down."""
    lines = (parent.root / "MODEL_CARD.md").read_text(encoding="utf-8").splitlines()
    try:
        start = lines.index("## How it was made") + 1
    except ValueError:
        return ["(the parent's card has no such section)"]
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return ["#" + x if x.startswith("### ") else x for x in lines[start:end]]
