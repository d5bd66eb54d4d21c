"""Plot the training run's loss curve as an SVG, with no plotting library.

Run from the repository root after (or during) training:

    python models/ouro-code-tiny/train/plot_loss.py [--csv target/bundled-train/loss.csv] [--out models/ouro-code-tiny/loss.svg]

Lines: training loss on plain and infill batches (each averaged over the steps between log lines),
and held-out loss on a fixed evaluation set (plain and infill), all as mean cross-entropy in nats
per masked token, against tokens seen. The dashed line is the corpus's unigram entropy.
"""

import argparse
import csv
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
UNIGRAM = 6.56

SERIES = [
    ("train_loss_plain", "train, plain", "#1f77b4", False),
    ("train_loss_infill", "train, infill", "#ff7f0e", False),
    ("heldout_loss_plain", "held out, plain", "#1f77b4", True),
    ("heldout_loss_infill", "held out, infill", "#ff7f0e", True),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", default=os.path.join(ROOT, "target", "bundled-train", "loss.csv"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "loss.svg"))
    args = ap.parse_args()
    with open(args.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    w, h, left, right, top, bottom = 720, 420, 60, 170, 20, 50
    x_max = max(float(r["tokens_seen"]) for r in rows)
    y_lo, y_hi = 0.0, 9.0

    def px(tokens, loss):
        x = left + (w - left - right) * tokens / x_max
        y = top + (h - top - bottom) * (1 - (min(loss, y_hi) - y_lo) / (y_hi - y_lo))
        return x, y

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>']
    for v in range(0, 10):
        _, y = px(0, v)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w - right}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{v}</text>')
    step = 10 ** math.floor(math.log10(x_max))
    t = 0.0
    while t <= x_max:
        x, _ = px(t, 0)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{h - bottom}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{h - bottom + 16}" text-anchor="middle">{t / 1e6:g}M</text>')
        t += step
    out.append(f'<text x="{(left + w - right) / 2}" y="{h - 12}" text-anchor="middle">token positions seen</text>')
    out.append(f'<text x="16" y="{(top + h - bottom) / 2}" transform="rotate(-90 16 {(top + h - bottom) / 2})" '
               f'text-anchor="middle">cross-entropy (nats per masked token)</text>')
    x0, yu = px(0, UNIGRAM)
    x1, _ = px(x_max, UNIGRAM)
    out.append(f'<line x1="{x0}" y1="{yu:.1f}" x2="{x1}" y2="{yu:.1f}" stroke="#888" stroke-dasharray="4 3"/>')
    legend_y = top + 10
    for key, label, color, held in SERIES:
        pts = [px(float(r["tokens_seen"]), float(r[key])) for r in rows
               if r.get(key) not in (None, "", "nan") and not math.isnan(float(r[key]))]
        if not pts:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        style = f'stroke-width="2.2"' if held else 'stroke-width="1" stroke-opacity="0.45"'
        out.append(f'<polyline fill="none" stroke="{color}" {style} points="{path}"/>')
        lx = w - right + 12
        out.append(f'<line x1="{lx}" y1="{legend_y}" x2="{lx + 20}" y2="{legend_y}" stroke="{color}" {style}/>')
        out.append(f'<text x="{lx + 26}" y="{legend_y + 4}">{label}</text>')
        legend_y += 18
    out.append(f'<line x1="{w - right + 12}" y1="{legend_y}" x2="{w - right + 32}" y2="{legend_y}" stroke="#888" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{w - right + 38}" y="{legend_y + 4}">unigram entropy</text>')
    out.append("</svg>")
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {args.out} ({len(rows)} log lines)")


if __name__ == "__main__":
    main()
