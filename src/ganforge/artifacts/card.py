"""Model cards and the model description every export carries.

`model_info(sampler)` is what a runtime needs to drive the exported generator without ganforge: the ONNX
input names, the latent layout (noise width and codes, see `ganforge.latent`), the image shape, the
classes, and for a family that truncates in w (Family.truncation == "w") a "truncation" entry: {"space": "w",
"input": "truncation", "default": psi}, the graph's (N,) float input psi, which a runtime feeds instead of
scaling z; for a family without the trick (Family.truncation None, progan) {"space": "none", "reason": why},
so that runtimes refuse psi != 1 (without the entry, truncation scales the noise of z, as in every export
made before). A table model's info has "output": "rows" and a "table" entry (`table_info`: columns, kinds,
the fitted transformer's state, and `decoding`, which says that decoding runs outside the graph, in numpy).
`model_card(sampler)` adds what a reader needs to trust it: family, data, size, training steps, and every metric measured on this checkpoint with its
provenance (from RUN/eval/step_N.json).
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from .. import __version__
from ..files import replace_atomically

INFO_FORMAT = 1


def translation_io(sampler, direction: str = "AtoB") -> dict[str, Any]:
    """What an image-to-image generator takes and gives in `direction` (JSON-ready).

    inputs: ["x"], or ["x", "domain"] for families that translate to a chosen domain (stargan);
    input_shape / output_shape: (C, H, W) of one image (AtoB: domain A -> B; BtoA: B -> A);
    directions: the family's; domains: stargan's target domain names, else the names of domains A and B.
    """
    spec, family = sampler.spec, sampler.family
    with_domain = family.conditioning == "image+domain"
    shape_a = [int(s) for s in family.in_shape]
    shape_b = [int(s) for s in family.out_shape]
    input_shape, output_shape = (shape_b, shape_a) if direction == "BtoA" else (shape_a, shape_b)
    return {"inputs": ["x", "domain"] if with_domain else ["x"], "input_shape": input_shape,
            "output_shape": output_shape, "direction": direction, "directions": list(family.directions),
            "domains": list(spec.class_names) if with_domain else list(spec.domains)}


TABLE_DECODING = (
    "The graph outputs ENCODED rows (N, D): per column a tanh/linear value and/or a one-hot block, as the "
    "layout in `state` lists them. Decoding runs outside the graph, in numpy: argmax of each one-hot block "
    "(categories, booleans, VGM modes), the VGM mode's mean + 4 sd * value, un-standardising, the inverse of the "
    "log / logit / log_distance / formula transforms, rounding integers and datetimes, clamping to the columns' "
    "bounds. `state` (model_info's table.state; OUT.table.json beside an ONNX export) is the fitted "
    "TableTransformer (ganforge.data.table.TableTransformer.from_state(state).inverse(rows)); "
    "ganforge/serve/table_rows.py decode_rows(state, rows) does the same with numpy alone "
    "(the Lambda package ships it).")


def table_info(sampler) -> dict[str, Any]:
    """What a runtime needs to decode a table model's rows: the columns, their kinds, the encoded width, what
    runs outside the graph (TABLE_DECODING) and the fitted transformer's state (JSON-ready)."""
    state = json.loads(sampler.spec.table_state)
    infos = [c["info"] for c in state["columns"]]
    return {"columns": [i["name"] for i in infos], "kinds": [i["kind"] for i in infos],
            "encoded_width": int(sampler.spec.shape[0]), "decoding": TABLE_DECODING, "state": state}


TEXT_ENCODING = (
    "The graph's `text_emb` input (N, dim) is a caption's sentence embedding by the frozen encoder named in "
    "`encoder`: tokenise with OUT.tokenizer.json (Hugging Face tokenizers; truncation at max_tokens, no padding "
    "inside a caption), run OUT.text.onnx on (input_ids, attention_mask) int64 (N, T), padded with 0 and mask 0; "
    "its output is already mean-pooled over the mask and L2-normalised. ganforge/serve/text_onnx.py does this with "
    "tokenizers + onnxruntime alone.")


def text_info(sampler) -> dict[str, Any]:
    """What a runtime needs to turn a caption into a text model's `text_emb` input (JSON-ready)."""
    from ..text.minilm import max_seq_length

    return {"dim": int(sampler.spec.text_dim), "encoder": sampler.spec.text_encoder, "input": "text_emb",
            "encoder_onnx": "OUT.text.onnx", "tokenizer": "OUT.tokenizer.json", "max_tokens": max_seq_length(),
            "preview_captions": list(getattr(sampler.family, "preview_texts", [])), "encoding": TEXT_ENCODING}


def model_info(sampler, direction: str = "AtoB") -> dict[str, Any]:
    """The runtime description of a generator (JSON-ready); `direction`: two-way image-to-image families."""
    spec = sampler.spec
    if sampler.is_translation:
        io_ = translation_io(sampler, direction)
        return {
            "format": INFO_FORMAT, "family": sampler.family.name, "kind": spec.kind, "task": "translation",
            "shape": io_["output_shape"], "output_range": [-1.0, 1.0], "latent": None, "conditional": False,
            "n_classes": 0, "class_names": [], **io_, "output": "images", "step": sampler.step,
            "ema": sampler.ema, "ganforge_version": __version__,
        }
    conditional = sampler.conditional
    info = {
        "format": INFO_FORMAT,
        "family": sampler.family.name,
        "kind": spec.kind,
        "shape": [int(s) for s in spec.shape],
        "output_range": [-1.0, 1.0] if spec.kind == "image" else None,
        "latent": {"width": int(sampler.family.latent_dim), "noise_dim": sampler.noise_dim,
                   "codes": sampler.code_layout, "rng": "ganforge.latent v1 (lowbias32 counter + Box-Muller)"},
        "conditional": conditional,
        "n_classes": int(spec.n_classes) if conditional else 0,
        "class_names": list(spec.class_names) if conditional else [],
        "inputs": ["z", "y"] if conditional else ["z"],
        "output": {"image": "images", "audio": "audio"}.get(spec.kind, "points"),
        "step": sampler.step,
        "ema": sampler.ema,
        "ganforge_version": __version__,
    }
    if spec.kind == "audio":  # clips (N, 1, L) in [-1, 1] at this rate; the API and Lambda answer WAV
        info["sample_rate"] = int(spec.sample_rate)
    if sampler.takes_text:  # G reads sentence embeddings; the encoder is exported beside it (onnx.py)
        info["inputs"] = ["z", "text_emb"]
        info["text"] = text_info(sampler)
    if spec.kind == "table":  # G outputs encoded rows; decoding runs outside the graph (table_info)
        info["output"] = "rows"
        info["table"] = table_info(sampler)
    if sampler.truncation_space == "w":  # only then: every "z" export stays as it was
        info["inputs"] = [*info["inputs"], "truncation"]
        info["truncation"] = {"space": "w", "input": "truncation", "default": sampler.default_truncation}
    elif sampler.truncation_space == "none":  # no trick: runtimes refuse psi != 1, naming the reason
        info["truncation"] = {"space": "none", "reason": sampler.family.truncation_reason}
    return info


def _metrics(ckpt: Path, step: int) -> list[dict[str, Any]]:
    """Every metric measured on this checkpoint: RUN/eval/step_N.json written by `ganforge evaluate`."""
    found = []
    path = ckpt.parent.parent / "eval" / f"step_{step:08d}.json"
    if path.exists():
        report = json.loads(path.read_text())
        for result in report.get("results", {}).values():
            found.append({"name": result["name"], "values": result["values"],
                          "higher_is_better": result.get("higher_is_better"),
                          "provenance": result.get("provenance", {}), "source": str(path.name)})
    return found


def model_card(sampler, exported: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card of a checkpoint's generator; `exported` adds what the export produced (files, checks)."""
    cfg = sampler.config
    run = cfg.get("run", {})
    n_params = sum(p.numel() for p in sampler.G.parameters())
    return {
        "model": f"{sampler.family.name} generator",
        "family": sampler.family.name,
        "description": sampler.family.description,
        "family_options": cfg.get("model", {}),
        "data": {"source": run.get("data", {}).get("source"), "name": sampler.spec.name,
                 "kind": sampler.spec.kind, "shape": list(sampler.spec.shape),
                 "classes": list(sampler.spec.class_names),
                 **({"text_encoder": sampler.spec.text_encoder} if sampler.spec.text_dim else {}),
                 **({"shape_b": list(sampler.spec.shape_b), "pairing": sampler.spec.pairing,
                     "domains": list(sampler.spec.domains)} if sampler.spec.pairing else {})},
        "size": {"generator_parameters": int(n_params), "generator_mb_fp32": round(n_params * 4 / 2**20, 3)},
        "training": {"steps": sampler.step, "batch_size": run.get("train", {}).get("batch_size"),
                     "seed": run.get("train", {}).get("seed"), "weights": "EMA" if sampler.ema else "raw"},
        "checkpoint": str(sampler.path),
        "metrics": _metrics(sampler.path, sampler.step),
        "latent": model_info(sampler)["latent"],  # None for image-to-image families
        **({"truncation": model_info(sampler)["truncation"]} if sampler.truncation_space != "z" else {}),
        **({"table": {k: v for k, v in table_info(sampler).items() if k != "state"}}
           if sampler.spec.kind == "table" else {}),
        **({"translation": translation_io(sampler, (exported or {}).get("direction", "AtoB"))}
           if sampler.is_translation else {}),
        "export": exported or {},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "ganforge_version": __version__,
    }


def _input_row(card: dict[str, Any]) -> str:
    """The card's row about G's input: latent noise and codes, or images (and a domain) to translate."""
    if card.get("latent") is None:
        t = card.get("translation", {})
        dims = "x".join(map(str, t.get("input_shape", []))), "x".join(map(str, t.get("output_shape", [])))
        domain = f" + target domain ({', '.join(t['domains'])})" if "domain" in t.get("inputs", []) else ""
        return (f"| input | {dims[0]} images{domain} -> {dims[1]} images; directions "
                f"{', '.join(t.get('directions', []))} |")
    trunc = card.get("truncation")
    return (f"| latent | {card['latent']['noise_dim']} N(0, 1) noise"
            + "".join(f" + {c['name']} ({c['kind']}{', ' + str(c['size']) if c['kind'] == 'categorical' else ''})"
                      for c in card["latent"]["codes"])
            + _truncation_note(trunc)
            + " |")


def _truncation_note(trunc: dict[str, Any] | None) -> str:
    """The latent row's words on the truncation trick: where psi acts, unless it scales z (no entry)."""
    if not trunc:
        return ""
    if trunc.get("space") == "none":
        return "; no truncation trick" + (f" ({trunc['reason']})" if trunc.get("reason") else "")
    return f"; truncation psi in w-space (input `{trunc['input']}`, default {trunc['default']:g})"


def _table_rows(card: dict[str, Any]) -> list[str]:
    """The card's rows about a table model: its columns (and kinds) and where decoding runs."""
    table = card.get("table")
    if not table:
        return []
    columns = ", ".join(f"{c} ({k})" for c, k in zip(table["columns"], table["kinds"]))
    return [f"| columns | {columns} |", f"| decoding | {table['decoding']} |"]


def card_markdown(card: dict[str, Any]) -> str:
    """The card as a Markdown page."""
    data, size, tr = card["data"], card["size"], card["training"]
    lines = [f"# Model card: {card['model']}", "", card["description"] or "", "",
             "| | |", "|---|---|",
             f"| family | `{card['family']}` |",
             f"| data | {data['name']} (`{data['source']}`), {data['kind']} {'x'.join(map(str, data['shape']))}"
             + (f" -> {'x'.join(map(str, data['shape_b']))} ({data['pairing']}: {' -> '.join(data['domains'])})"
                if data.get("shape_b") else "") + " |",
             f"| classes | {', '.join(data['classes']) or 'none (unconditional)'} |",
             f"| generator size | {size['generator_parameters']:,} parameters ({size['generator_mb_fp32']} MB fp32) |",
             f"| training | {tr['steps']} steps, batch {tr['batch_size']}, seed {tr['seed']}, {tr['weights']} weights |",
             _input_row(card),
             *_table_rows(card),
             f"| checkpoint | `{card['checkpoint']}` |", "", "## Metrics", ""]
    if not card["metrics"]:
        lines.append("None measured on this checkpoint: run `ganforge evaluate --ckpt RUN` before exporting.")
    for m in card["metrics"]:
        p = m["provenance"]
        values = ", ".join(f"{k} = {v:.4g}" for k, v in m["values"].items())
        lines.append(f"- **{m['name']}**: {values} ({'higher' if m['higher_is_better'] else 'lower'} is better); "
                     f"features `{p.get('extractor')}`, {p.get('n_fake')} generated vs {p.get('n_real')} real "
                     f"({p.get('reference')}), seed {p.get('seed')}, from `{m['source']}`")
    if card["export"]:
        lines += ["", "## Export", ""]
        lines += [f"- {k}: {v}" for k, v in card["export"].items()]
    lines += ["", f"Written by ganforge {card['ganforge_version']} on {card['created']}.", ""]
    return "\n".join(lines)


def write_card(card: dict[str, Any], stem: str | Path) -> tuple[Path, Path]:
    """Write STEM.json and STEM.md; returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    js, md = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".md")
    replace_atomically(js, lambda tmp: tmp.write_text(json.dumps(card, indent=2) + "\n"))
    replace_atomically(md, lambda tmp: tmp.write_text(card_markdown(card)))
    return js, md
