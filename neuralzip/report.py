"""The compress report: a table for people, JSON Lines for programs."""

import json

import click

from neuralzip.api import Report

def json_line(report: Report) -> str:
    return json.dumps(report.as_dict())


def table(reports: list[Report]) -> str:
    rows = []
    peer_names = sorted({p for r in reports for p in r.peers})
    head = ["file", "dims", "model", "nll float", "nll exact", "achieved", "overhead", "bytes", "time"]
    bits_back = any(r.initial_bits is not None for r in reports)
    if bits_back:  # a bits-back chain's start: included in "achieved", shown apart
        head.append("initial bits")
    head += [f"{p} bpd" for p in peer_names]
    for r in reports:
        d = r.as_dict()
        model = d["model"] + (f" level {d['level']}" if d["level"] != 1 else "")
        row = [d["file"], d["shape"], model + (f" [{d['weights'][:8]}]" if d["weights"] else ""),
               f"{r.nll_float_bits / r.dims:.4f}" if r.dims else "-", f"{d['nll_bpd']:.4f}", f"{d['bpd']:.4f}",
               f"{d['overhead_pct']:+.2f}%", str(d["bytes"]), f"{d['seconds']:.2f}s"]
        if bits_back:
            row.append("-" if r.initial_bits is None else f"{r.initial_bits:.0f}")
        for p in peer_names:
            if p not in r.peers:
                row.append("-")  # a peer of the other medium
            else:
                v = r.peers[p]["bpd"]
                row.append("n/a" if v is None else f"{v:.4f}")  # n/a: e.g. FLAC cannot hold 32-bit PCM
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(head, widths))]
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in rows]
    lines.append("bits per dimension (bpd): nll = the model's likelihood (float / exact integer model), "
                 "achieved = 8 * bytes / dims"
                 + ("; vae: nll = the negative ELBO, initial bits = what starting the bits-back chain cost"
                    if bits_back else ""))
    return "\n".join(lines)


def echo_reports(reports: list[Report], as_json: bool) -> None:
    if as_json:
        for r in reports:
            click.echo(json_line(r))
    elif reports:
        click.echo(table(reports))
