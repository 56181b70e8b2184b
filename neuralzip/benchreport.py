"""Bench outputs: results.json, report.md and charts (PNG, matplotlib)."""

import json
import math
from pathlib import Path

REFERENCE = {"image": "png", "audio": "flac"}
PLURAL = {"image": "images", "audio": "audio"}


def totals(rows: list[dict], kind: str) -> dict:
    """Per codec over the files it ran on: bytes, dims, bpd, seconds, ratio to the reference."""
    out = {}
    for codec in _codecs(rows, kind):
        done = [r for r in rows if r["kind"] == kind and r["codec"] == codec and "skipped" not in r]
        if not done:
            continue
        dims = sum(r["dims"] for r in done)
        t = {"files": len(done), "bytes": sum(r["bytes"] for r in done), "dims": dims,
             "compress_s": sum(r["compress_s"] for r in done), "decompress_s": sum(r["decompress_s"] for r in done)}
        t["bpd"] = 8 * t["bytes"] / dims
        if done[0]["neuralzip"]:
            t["nll_float_bpd"] = sum(r["nll_float_bits"] for r in done) / dims
            t["nll_bpd"] = sum(r["nll_bits"] for r in done) / dims
            t["verified"] = all(r["verified"] for r in done)
            t["weights"] = done[0]["weights"]
        out[codec] = t
    ref = out.get(REFERENCE[kind])
    for codec, t in out.items():
        if ref and ref["files"] == t["files"]:
            t["ratio_to_" + REFERENCE[kind]] = t["bytes"] / ref["bytes"]
    return out


def _codecs(rows, kind):
    seen = []
    for r in rows:
        if r["kind"] == kind and r["codec"] not in seen:
            seen.append(r["codec"])
    return seen


def skipped(rows: list[dict]) -> dict:
    """{codec: reason} for every codec skipped on at least one file."""
    return {r["codec"]: r["skipped"] for r in rows if "skipped" in r}


def write_all(rows: list[dict], out_dir: Path, command: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    kinds = [k for k in ("image", "audio") if any(r["kind"] == k for r in rows)]
    summary = {k: totals(rows, k) for k in kinds}
    results = {"command": command, "rows": rows, "totals": summary, "skipped": skipped(rows)}
    paths = [out_dir / "results.json", out_dir / "report.md"]
    paths[0].write_text(json.dumps(results, indent=1) + "\n")
    paths[1].write_text(markdown(rows, summary, command))
    for kind in kinds:
        paths += charts(summary[kind], kind, out_dir)
    return paths


def markdown(rows: list[dict], summary: dict, command: str) -> str:
    lines = ["# neuralzip bench", "", f"Command: `{command}`", "",
             "Bits per dimension (bpd) = 8 x compressed bytes / (pixels x channels, or frames x channels); "
             "times are whole processes, start-up included.", ""]
    for reason in sorted({f"- `{c}` skipped: {w}" for c, w in skipped(rows).items()}):
        lines.append(reason)
    for kind, tot in summary.items():
        codecs = list(tot)
        ref = REFERENCE[kind]
        lines += ["", f"## {PLURAL[kind]}: bits per dimension", "", "| file | dims | " + " | ".join(codecs) + " |",
                  "|---|---|" + "---|" * len(codecs)]
        for f in dict.fromkeys(r["file"] for r in rows if r["kind"] == kind):
            cells = []
            for c in codecs:
                r = next((r for r in rows if r["file"] == f and r["codec"] == c), None)
                cells.append("skipped" if r is None or "skipped" in r else f"{r['bpd']:.4f}")
            dims = next(r["dims"] for r in rows if r["file"] == f)
            lines.append(f"| {Path(f).name} | {dims} | " + " | ".join(cells) + " |")
        lines.append("| **total** | | " + " | ".join(f"**{tot[c]['bpd']:.4f}**" for c in codecs) + " |")
        lines.append(f"| ratio to {ref} | | " + " | ".join(
            f"{tot[c]['ratio_to_' + ref]:.3f}" if "ratio_to_" + ref in tot[c] else "-" for c in codecs) + " |")
        lines += ["", f"### {PLURAL[kind]}: time (seconds, all files)", "", "| codec | compress | decompress |",
                  "|---|---|---|"]
        lines += [f"| {c} | {tot[c]['compress_s']:.2f} | {tot[c]['decompress_s']:.2f} |" for c in codecs]
        ours = [c for c in codecs if "nll_bpd" in tot[c]]
        if ours:
            lines += ["", f"### {PLURAL[kind]}: likelihood against achieved size (neuralzip models)", "",
                      "| model | weights | nll float bpd | nll exact bpd | achieved bpd | overhead | decoded exactly |",
                      "|---|---|---|---|---|---|---|"]
            for c in ours:
                t = tot[c]
                lines.append(f"| {c} | {t['weights'] or 'none'} | {t['nll_float_bpd']:.4f} | {t['nll_bpd']:.4f} | "
                             f"{t['bpd']:.4f} | {100 * (t['bpd'] / t['nll_bpd'] - 1):+.2f}% | "
                             f"{'yes' if t['verified'] else '**NO**'} |")
        lines += ["", f"![bits per dimension]({kind}_bpd.png)", f"![size against time]({kind}_size_time.png)"]
    return "\n".join(lines) + "\n"


def charts(tot: dict, kind: str, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    codecs = list(tot)
    colours = ["tab:red" if c.startswith("neuralzip:") else "tab:blue" for c in codecs]
    bpd_path, time_path = out_dir / f"{kind}_bpd.png", out_dir / f"{kind}_size_time.png"

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    bars = ax.bar(codecs, [tot[c]["bpd"] for c in codecs], color=colours)
    ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_ylabel("bits per dimension (lower is better)")
    ax.set_title(f"{PLURAL[kind]}: total bits per dimension ({tot[codecs[0]]['files']} files)")
    ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    fig.savefig(bpd_path)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    span = (max(tot[c]["bpd"] for c in codecs) - min(tot[c]["bpd"] for c in codecs)) or 1.0
    placed = []
    for c, col in zip(codecs, colours):
        x, y = max(tot[c]["compress_s"], 1e-6), tot[c]["bpd"]
        ax.scatter(x, y, color=col)
        # a label beside one already placed (within a fifth of a decade and 4% of the height) goes below its point
        near = any(abs(math.log10(x / px)) < 0.2 and abs(y - py) < 0.04 * span for px, py in placed)
        ax.annotate(c, (x, y), fontsize=8, xytext=(4, -11 if near else 4), textcoords="offset points")
        placed.append((x, y))
    ax.set_xscale("log")
    ax.set_xlabel("compress time, all files (s, whole processes, log scale)")
    ax.set_ylabel("bits per dimension")
    ax.set_title(f"{PLURAL[kind]}: size against time")
    fig.tight_layout()
    fig.savefig(time_path)
    plt.close(fig)
    return [bpd_path, time_path]
