"""`ganforge report RUN`: one self-contained HTML page about a run.

Config, loss curves, D(x)/D(G(z)), D accuracy, metric curves, health events, sample grids over time,
the memorisation check (the samples closest to the training set beside their nearest training images,
when `ganforge evaluate` measured it) and final metrics with their provenance. Plots are PNG images
(matplotlib, Agg) embedded as data URIs, so the page is a single file that opens anywhere.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

PLOTS = [  # (title, keys, y label)
    ("Losses", ["d/loss", "g/loss"], "loss"),
    ("D(x) and D(G(z))", ["d/real", "d/fake"], "D output"),
    ("D accuracy", ["d/acc_real", "d/acc_fake"], "accuracy"),
    ("Gradient norms", ["d/grad_norm", "g/grad_norm"], "norm"),
    ("Batch spread (fake vs real)", ["stats/real_spread", "stats/fake_spread"], "per-dim std"),
    ("D's overfitting r_t = E[sign(D(real))], and ADA's p", ["d/rt", "aug/p"], "r_t, p"),
    ("Resolution over time (progressive growing)", ["progan/resolution"], "pixels (height)"),
    ("Fade-in alpha", ["progan/alpha"], "alpha"),
    ("SWD per pyramid level at stage ends (x1e3)", ["swd/mean"], "SWD"),
]


def read_log(run_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(step records, event records) of RUN/log.jsonl; a line cut short by a crash is skipped."""
    steps, events = [], []
    path = run_dir / "log.jsonl"
    if not path.exists():
        return steps, events
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        (events if "event" in rec else steps).append(rec)
    return steps, events


def _plot(records: list[dict[str, Any]], keys: list[str], title: str, ylabel: str) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {k: [(r["step"], r[k]) for r in records if k in r] for k in keys}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    for k, pts in series.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k, linewidth=1)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _img(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _memorisation(path: Path, result: dict[str, Any]) -> str:
    """The memorisation check of one RUN/eval/*.json: verdict, distances, and the closest pairs."""
    v, x = result.get("values", {}), result.get("provenance", {}).get("extra", {})
    esc = html.escape

    def num(key: str) -> str:
        return f"{v[key]:.4g}" if isinstance(v.get(key), (int, float)) else "-"

    def pct(key: str) -> str:
        return f"{100 * v[key]:.3g}%" if isinstance(v.get(key), (int, float)) else "-"

    rows = "".join(f"<tr><td>{space} distance to the nearest training image</td>"
                   f"<td>{num(f'sample_{space}_median')} / {num(f'sample_{space}_p5')}</td>"
                   f"<td>{num(f'heldout_{space}_median')} / {num(f'heldout_{space}_p5')}</td>"
                   f"<td>{num(f'{space}_ratio')}</td><td>{pct(f'{space}_copy_rate')}</td></tr>"
                   for space in ("feature", "pixel"))
    parts = [f"<h3>{esc(path.name)}</h3><p class='verdict'><b>{esc(str(x.get('verdict', '')))}</b></p>",
             f"<p>near-copies (close in features and in pixels): {pct('copy_rate')} of samples (new real images: "
             f"{pct('heldout_copy_rate')}); median ratio {num('ratio')}.<br>training images: "
             f"{esc(str(x.get('training_set', '')))}<br>new real images: {esc(str(x.get('heldout', '')))}<br>"
             f"pixels: {esc(str(x.get('pixel_space', '')))}</p>",
             "<table><tr><th></th><th>samples: median / 5th percentile</th><th>new real images: median / 5th "
             f"percentile</th><th>ratio of medians</th><th>copy rate</th></tr>{rows}</table>"]
    pairs = x.get("pairs") or []
    png = path.parent / str(x.get("pairs_image", ""))
    if pairs and x.get("pairs_image") and png.is_file():
        parts.append(f"<figure class='pairs'><img alt='closest pairs' src='data:image/png;base64,{_img(png)}'>"
                     "<figcaption>top: the samples closest to the training set; below each: its nearest training "
                     "image in pixels (columns are the pairs below, left to right)</figcaption></figure>")
    if pairs:
        body = "".join(f"<tr><td>{i + 1}</td><td>{p['sample']}</td><td>{p['train']}</td>"
                       f"<td>{p['pixel_distance']:.4g}</td><td>{p['feature_distance']:.4g}</td>"
                       f"<td>{'yes' if p.get('near_copy') else 'no'}</td></tr>" for i, p in enumerate(pairs))
        parts.append("<table class='pairs'><tr><th>pair</th><th>sample</th><th>training image</th><th>pixel "
                     f"distance</th><th>feature distance</th><th>near-copy</th></tr>{body}</table>")
    return "\n".join(parts)


def build_report(run_dir: str | Path, out: str | Path | None = None, max_grids: int = 8) -> Path:
    run = Path(run_dir)
    cfg_path = run / "config.json"
    if not cfg_path.exists():
        raise ValueError(f"'{run}' is not a run directory (no config.json); give the --out of 'ganforge train'")
    config = json.loads(cfg_path.read_text())
    records, events = read_log(run)
    metric_keys = sorted({k for r in records for k in r if k.startswith(("eval/", "metrics/"))})
    parts = [f"<h1>ganforge run: {html.escape(run.name)}</h1>",
             f"<p>family <b>{html.escape(str(config.get('family')))}</b>, data <b>"
             f"{html.escape(str(config.get('data', {}).get('source')))}</b>, "
             f"last logged step {records[-1]['step'] if records else 0} of {config.get('train', {}).get('steps')}</p>"]
    parts.append("<h2>Training curves</h2>")
    for title, keys, ylabel in PLOTS + ([("Metrics", metric_keys, "value")] if metric_keys else []):
        png = _plot(records, keys, title, ylabel)
        if png:
            parts.append(f'<img alt="{html.escape(title)}" src="data:image/png;base64,{png}">')
    parts.append("<h2>Health events</h2>")
    if events:
        rows = "".join(f"<tr><td>{e.get('step')}</td><td>{html.escape(e['event'])}</td>"
                       f"<td>{html.escape(e.get('message', ''))}</td></tr>" for e in events)
        parts.append(f"<table><tr><th>step</th><th>event</th><th>message</th></tr>{rows}</table>")
    else:
        parts.append("<p>none</p>")
    grids = sorted((run / "samples").glob("step_*.png"))
    if len(grids) > max_grids:  # evenly spaced over the run, always including the last
        idx = [round(i * (len(grids) - 1) / (max_grids - 1)) for i in range(max_grids)]
        grids = [grids[i] for i in sorted(set(idx))]
    final = run / "samples" / "final.png"
    parts.append("<h2>Samples over time</h2><div class='grids'>")
    for g in grids + ([final] if final.exists() else []):
        parts.append(f"<figure><img src='data:image/png;base64,{_img(g)}'><figcaption>{g.stem}</figcaption></figure>")
    parts.append("</div>")
    evals = sorted((run / "eval").glob("*.json")) if (run / "eval").is_dir() else []
    checks = []
    for e in evals:
        try:
            mem = json.loads(e.read_text()).get("results", {}).get("memorisation")
        except (json.JSONDecodeError, AttributeError):
            mem = None
        if isinstance(mem, dict):
            checks.append(_memorisation(e, mem))
    if checks:
        parts.append("<h2>Memorisation check</h2>")
        parts += checks
    if evals:
        parts.append("<h2>Final metrics</h2>")
        for e in evals:
            parts.append(f"<h3>{html.escape(e.name)}</h3><pre>{html.escape(e.read_text())}</pre>")
    parts.append(f"<h2>Configuration</h2><pre>{html.escape(json.dumps(config, indent=2))}</pre>")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>ganforge report</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
            "img{max-width:100%}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
            "text-align:left}.grids{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0}"
            "figcaption{font-size:12px;text-align:center}pre{background:#f6f6f6;padding:8px;overflow:auto}"
            "</style></head><body>" + "\n".join(parts) + "</body></html>")
    out_path = Path(out) if out else run / "report.html"
    tmp = out_path.with_suffix(".html.tmp")
    tmp.write_text(page)
    tmp.replace(out_path)
    return out_path
