"""The neuralzip command line. Thin: the work is in api.py.

Start-up matters (a folder of short clips is compressed one process at a time):
the modules that pull in numpy, the coder and the models are imported on first
use, so `--version` and `--help` load only click."""

import importlib
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from neuralzip import __version__, limits
from neuralzip.errors import ContainerError, InputError, NeuralzipError
from neuralzip.fileio import check_writable, write_atomic


class _OnFirstUse:
    """A module imported when one of its names is first read."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)


api = _OnFirstUse("neuralzip.api")
container = _OnFirstUse("neuralzip.container")
progress = _OnFirstUse("neuralzip.progress")
detect = _OnFirstUse("neuralzip.media.detect")


def _fail(exc: NeuralzipError):
    click.echo(f"neuralzip: error: {exc}", err=True)
    sys.exit(exc.exit_code)


def _note(msg: str, quiet: bool) -> None:
    if not quiet:
        click.echo(msg, err=True)


@contextmanager
def _progress_bar(label: str, quiet: bool):
    """A bar on stderr while a file is coded (only on a terminal, never with -q)."""
    if quiet or not sys.stderr.isatty():
        yield
        return
    with click.progressbar(length=1000, label=label, file=sys.stderr) as bar:
        shown = [0]

        def update(fraction: float) -> None:
            step = int(1000 * fraction) - shown[0]
            if step > 0:
                bar.update(step)
                shown[0] += step

        with progress.reporting(update):
            yield
        update(1.0)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="neuralzip")
def cli():
    """Lossless compression of images and audio with generative models."""


def _directory_files(root: Path, quiet: bool) -> list[tuple[str, Path]]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        with open(path, "rb") as f:
            head = f.read(16)
        if detect.sniff(head) is None:
            _note(f"skipping {path}: not a supported image or audio file", quiet)
            continue
        found.append((path.relative_to(root).as_posix(), path))
    if not found:
        raise InputError(f"{root}: no supported image or audio files in this directory")
    return found


def _plan_jobs(files: tuple[str, ...], out: str | None, quiet: bool):
    """-> [(output path, [(member name, source path)], is_archive)]."""
    paths = [Path(f) for f in files]
    for p in paths:
        if not p.exists():
            raise InputError(f"{p}: no such file or directory")
    if out is not None and (len(paths) > 1 or paths[0].is_dir()):
        members, seen = [], set()
        for p in paths:
            entries = _directory_files(p, quiet) if p.is_dir() else [(p.name, p)]
            for name, src in entries:
                if name in seen:
                    raise InputError(f"two inputs would be stored under the same name {name!r}")
                seen.add(name)
                members.append((name, src))
        return [(Path(out), members, True)]
    jobs = []
    for p in paths:
        if p.is_dir():
            jobs.append((p.parent / (p.resolve().name + ".nz"), _directory_files(p, quiet), True))
        else:
            jobs.append((Path(out) if out else p.with_name(p.name + ".nz"), [(p.name, p)], False))
    return jobs


def _verify(data: bytes, members: list, weights: str | None) -> None:
    _, decoded = container.loads(data)
    api.decode_members(decoded, weights, max_memory=None)  # checks every member against its stored checksum
    for original, stored in zip(members, decoded):
        if stored.sha256 != original.sha256:
            raise ContainerError(f"--verify failed for {original.name!r}")


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option("-o", "--output", "out", help="output .nz (an archive when several inputs or a directory)")
@click.option("--model", default="auto", show_default=True, help="model name (see `neuralzip models`)")
@click.option("--level", default=1, show_default=True, type=click.IntRange(1, 2),
              help="1: the default; 2: stronger and slower, where the model has it (auto takes it where it can)")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), help="a user-trained weights file")
@click.option("--compare", is_flag=True, help="also measure PNG (images) / FLAC (audio)")
@click.option("--verify", is_flag=True, help="decode what was written and compare before reporting success")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per input (JSON Lines)")
@click.option("--force", is_flag=True, help="overwrite existing outputs")
@click.option("-q", "--quiet", is_flag=True, help="no report, no notes")
def compress(files, out, model, level, weights, compare, verify, as_json, force, quiet):
    """Compress images and audio into .nz files."""
    from neuralzip import peers
    from neuralzip.report import echo_reports

    done, notes = [], []  # reports of the files written so far: one table at the end
    try:
        jobs = _plan_jobs(files, out, quiet)
        for target, _, _ in jobs:
            check_writable(target, force)
        for target, sources, is_archive in jobs:
            reports, peer_seconds = [], 0.0
            with api.Timer() as total:
                label = sources[0][0] if len(sources) == 1 else f"{len(sources)} files"
                with _progress_bar(f"compressing {label}", quiet):
                    originals = [api.read_file(src) for _, src in sources]
                    medias = [api.read_media(data, str(src)) for data, (_, src) in zip(originals, sources)]
                    members = api.encode_members([(m, name) for m, (name, _) in zip(medias, sources)], model, weights,
                                                 level)
                coding_seconds = total.elapsed()
                dims = [math.prod(m.shape) for m in members]
                for member, media, original, (_, src), nbytes, d in zip(members, medias, originals, sources,
                                                                        api.payload_shares(members), dims):
                    # an archive's members share the job's time by size (a chain codes them together)
                    rep = api.member_report(member, str(src), nbytes, coding_seconds * d / max(1, sum(dims)))
                    if compare:
                        with api.Timer() as pt:
                            rep.peers = peers.compare(media, original)
                        peer_seconds += pt.seconds
                    reports.append(rep)
                data = container.dumps(members, archive=is_archive)
                if verify:
                    _verify(data, members, weights)
                write_atomic(target, data)
            if len(members) == 1:  # a single file: bytes = the whole .nz, time = the whole job (peers aside)
                reports[0].bytes = len(data)
                reports[0].seconds = total.seconds - peer_seconds
            if as_json and not quiet:
                echo_reports(reports, as_json=True)  # JSON Lines stream as each output is written
            done += reports
            if len(members) > 1:
                notes.append(f"archive {target}: {len(members)} members, {len(data)} bytes")
    except NeuralzipError as exc:
        _echo_table(done, notes, as_json or quiet)
        _fail(exc)
    _echo_table(done, notes, as_json or quiet)


def _echo_table(reports, notes, silent: bool) -> None:
    from neuralzip.report import echo_reports

    if not silent:
        echo_reports(reports, as_json=False)
        for line in notes:
            click.echo(line)


_MAX_MEMORY_HELP = (f"refuse, before decoding, a member that would need more memory than SIZE (e.g. 512M, 4G; "
                    f"0: no limit)  [default: {limits.DEFAULT_MAX_MEMORY >> 30}G]")


def _parse_max_memory(ctx, param, value):
    try:
        return limits.parse_size(value)
    except InputError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[-1]) from None


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option("-o", "--output", "out", help="output file (single member) or directory (archive)")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), help="the weights file the .nz was made with")
@click.option("--max-memory", "max_memory", metavar="SIZE", default=f"{limits.DEFAULT_MAX_MEMORY >> 30}G",
              callback=_parse_max_memory, help=_MAX_MEMORY_HELP)
@click.option("--force", is_flag=True, help="overwrite existing outputs")
@click.option("-q", "--quiet", is_flag=True, help="no messages")
def decompress(files, out, weights, max_memory, force, quiet):
    """Restore the original files from .nz files, exactly."""
    try:
        for f in files:
            targets = api.decompress_file(f, out, weights, force,
                                          around=lambda name: _progress_bar(f"decompressing {name}", quiet),
                                          max_memory=max_memory)
            for t in targets:
                _note(f"restored {t}", quiet)
    except NeuralzipError as exc:
        _fail(exc)


@cli.command("test")
@click.argument("files", nargs=-1, required=True)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), help="the weights file the .nz was made with")
@click.option("--max-memory", "max_memory", metavar="SIZE", default=f"{limits.DEFAULT_MAX_MEMORY >> 30}G",
              callback=_parse_max_memory, help=_MAX_MEMORY_HELP)
@click.option("-q", "--quiet", is_flag=True, help="print only the files that fail")
def test_cmd(files, weights, max_memory, quiet):
    """Check .nz files: decode every member and verify its checksum, writing nothing.

    One line per file; exit 0 when every file is intact, 1 when any is not."""
    failed = 0
    for f in files:
        try:
            n = api.test_file(f, weights, max_memory)
        except NeuralzipError as exc:
            failed += 1
            click.echo(f"{f}: FAILED: {exc}")
            continue
        except MemoryError:
            failed += 1
            click.echo(f"{f}: FAILED: out of memory (lower --max-memory to refuse such files before decoding)")
            continue
        if not quiet:
            click.echo(f"{f}: ok ({n} member{'s' if n != 1 else ''})")
    if failed:
        sys.exit(1)


@cli.command()
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="the raw header as JSON")
def info(file, as_json):
    """Describe a .nz file without decoding it."""
    import json

    try:
        blob = api.read_file(file)
        top, members = container.loads(blob)
    except NeuralzipError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps({k: v for k, v in top.items()}, indent=1))
        return
    click.echo(f"{file}: neuralzip container v{container.FORMAT_VERSION}, {len(blob)} bytes, "
               f"written by neuralzip {top.get('neuralzip')} with constriction {top.get('constriction')}"
               + (", archive" if top.get("archive") else ""))
    for m, share in zip(members, api.payload_shares(members)):
        d = api.member_report(m, m.name, share, 0.0).as_dict()
        # members of one bits-back chain share its stream (stored with the first): show each one's share
        chain = api.chain_note(m)
        click.echo(f"  {m.name}: {m.kind} {d['shape']}, model {m.model} level {d['level']}"
                   f"{' weights ' + m.weights if m.weights else ''}, {len(m.chunks)} chunk(s), "
                   f"{share} bytes{chain}, {d['bpd']:.4f} bpd (model {d['nll_bpd']:.4f}), "
                   f"format {m.meta.get('format')}, sha256 {m.sha256[:16]}")


@cli.command()
def models():
    """List the models and what they handle."""
    from neuralzip.models import AUTO, AUTO_STRONG, all_codecs

    for c in sorted(all_codecs(), key=lambda c: (c.kind, c.name)):
        auto = " (auto)" if AUTO[c.kind] == c.name else (" (auto --level 2)" if AUTO_STRONG.get(c.kind) == c.name else "")
        weights = c.weights_hash or "no weights"
        levels = f"levels {','.join(map(str, c.levels))}"
        click.echo(f"{c.name:<12} {c.kind:<6} {weights:<16} {levels:<10} {c.summary}{auto}")


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--models", default="pixelcnn,wavenet,classic,histogram", show_default=True, help="comma-separated neuralzip models")
@click.option("--out", "out_dir", default="bench-results", show_default=True, type=click.Path(file_okay=False),
              help="folder for results.json, report.md and the charts")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1, 64), help="files benchmarked in parallel")
@click.option("-q", "--quiet", is_flag=True, help="no progress, no summary")
def bench(paths, models, out_dir, jobs, quiet):
    """Compare neuralzip models with PNG, optipng, WebP, JPEG XL, FLAC and WavPack."""
    from neuralzip import bench as benchmod
    from neuralzip import benchreport
    from neuralzip.models import model_names

    try:
        wanted = [m.strip() for m in models.split(",") if m.strip()]
        unknown = [m for m in wanted if m not in model_names()]
        if unknown:
            raise InputError(f"unknown model(s) {', '.join(unknown)} (see `neuralzip models`)")
        inputs = benchmod.find_inputs(list(paths))
        total = sum(benchmod.codec_count(kind, wanted) for _, kind in inputs)
        show = not quiet and sys.stderr.isatty()
        with click.progressbar(length=total, label="benchmarking", file=sys.stderr,
                               item_show_func=lambda r: r and f"{Path(r['file']).name}: {r['codec']}") if show \
                else _Silent() as bar:
            rows = benchmod.run(inputs, wanted, jobs, lambda row: bar.update(1, row))
        command = "neuralzip bench " + " ".join(sys.argv[2:])
        written = benchreport.write_all(rows, Path(out_dir), command)
    except NeuralzipError as exc:
        _fail(exc)
    if not quiet:
        for note in sorted(set(benchreport.skipped(rows).items())):
            click.echo(f"skipped {note[0]}: {note[1]}", err=True)
        for kind in ("image", "audio"):
            tot = benchreport.totals(rows, kind)
            if tot:
                click.echo(f"{benchreport.PLURAL[kind]}: " + ", ".join(f"{c} {t['bpd']:.4f}" for c, t in tot.items()) + " bpd")
        click.echo("wrote " + ", ".join(str(p) for p in written))
    if any(r.get("verified") is False for r in rows):
        click.echo("neuralzip: error: a neuralzip result did not decode to its input (see report.md)", err=True)
        sys.exit(1)


class _Silent:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, *args):
        pass


@cli.command()
@click.argument("file")
@click.option("-o", "--output", "out", required=True, help="the PNG to write")
@click.option("--model", default="auto", show_default=True)
@click.option("--force", is_flag=True, help="overwrite an existing output")
def explain(file, out, model, force):
    """Picture where the bits go: per pixel (images) or over time (audio)."""
    import tempfile

    from neuralzip import explain as explainmod

    try:
        target = Path(out)
        check_writable(target, force)
        original = api.read_file(file)
        media = api.read_media(original, file)
        with tempfile.NamedTemporaryFile(suffix=".png", dir=target.parent if str(target.parent) else ".") as tmp:
            info_ = explainmod.explain(media, Path(file).name, Path(tmp.name), model, original)
            write_atomic(target, Path(tmp.name).read_bytes())
    except NeuralzipError as exc:
        _fail(exc)
    click.echo(f"{file}: {info_['bits'] / info_['dims']:.4f} bits per dimension under {info_['model']}; wrote {out}")


def main():
    if not os.environ.get("NEURALZIP_DEBUG"):
        import warnings

        warnings.simplefilter("ignore")  # a library's warning is not for the user: errors are one line
    try:
        cli(prog_name="neuralzip")
    except KeyboardInterrupt:
        click.echo("neuralzip: interrupted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # never a traceback for the user
        if os.environ.get("NEURALZIP_DEBUG"):
            raise
        click.echo(f"neuralzip: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)


@cli.group()
def train():
    """Train a model's weights on your own files (needs torch: pip install 'neuralzip[train]')."""


@train.command("audio")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", "out_dir", default="weights", show_default=True, type=click.Path(file_okay=False),
              help="folder for the weights file")
@click.option("--hidden", default=8, show_default=True, type=click.IntRange(1, 64), help="hidden units")
@click.option("--steps", default=4000, show_default=True, type=click.IntRange(10), help="optimizer steps")
@click.option("--batch", default=8192, show_default=True, type=click.IntRange(16), help="samples per step")
@click.option("--lr", default=1e-2, show_default=True, help="peak learning rate")
@click.option("--every", default=16, show_default=True, type=click.IntRange(1, 1024),
              help="use every N-th sample of the recordings as a training example")
@click.option("--seed", default=0, show_default=True, help="random seed (initialisation, batches)")
def train_audio(data, out_dir, hidden, steps, batch, lr, every, seed):
    """Train the wavenet audio model on the recordings in DATA (every 10th file is kept for tuning)."""
    from neuralzip.train import audio

    path = audio.run(Path(data), Path(out_dir), hidden, steps, batch, lr, every, seed,
                     log=lambda m: click.echo(m, err=True))
    click.echo(f"wrote {path}  (use it with --weights {path}, or ship it in weights/)")


@train.command("image")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", "out_dir", default="weights", show_default=True, type=click.Path(file_okay=False),
              help="folder for the weights file, the checkpoint and the feature cache")
@click.option("--steps", default=20000, show_default=True, type=click.IntRange(10), help="optimizer steps")
@click.option("--hidden", default=32, show_default=True, type=click.IntRange(4, 256), help="hidden units per layer")
@click.option("--mixtures", default=3, show_default=True, type=click.IntRange(1, 8), help="logistic components")
@click.option("--crops", default=4, show_default=True, type=click.IntRange(1), help="random crops per image")
@click.option("--crop-size", default=224, show_default=True, type=click.IntRange(8), help="crop side in pixels")
@click.option("--batch", default=4096, show_default=True, type=click.IntRange(16), help="values per step")
@click.option("--lr", default=3e-3, show_default=True, help="peak learning rate")
@click.option("--seed", default=0, show_default=True, help="random seed (crops, initialisation, batches)")
@click.option("--checkpoint-every", default=500, show_default=True, type=click.IntRange(1))
@click.option("--resume", is_flag=True, help="continue from the checkpoint and feature cache in --out")
def train_image(data, out_dir, steps, hidden, mixtures, crops, crop_size, batch, lr, seed, checkpoint_every, resume):
    """Train the pixelcnn image model on the images in DATA (every 10th file is kept for tuning)."""
    from neuralzip.train import image

    path = image.run(Path(data), Path(out_dir), steps, hidden, mixtures, crops, crop_size, batch, lr, seed,
                     checkpoint_every, resume, log=lambda m: click.echo(m, err=True))
    click.echo(f"wrote {path}  (use it with --weights {path}, or ship it in weights/)")


@train.command("vae")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", "out_dir", default="weights", show_default=True, type=click.Path(file_okay=False),
              help="folder for the weights file, the checkpoint and the patch cache")
@click.option("--steps", default=12000, show_default=True, type=click.IntRange(10), help="optimizer steps")
@click.option("--hidden", default=512, show_default=True, type=click.IntRange(8, 512),
              help="hidden units per layer (at most 512: int8 x uint8 sums stay exact in float32)")
@click.option("--patches", default=3_000_000, show_default=True, type=click.IntRange(1000),
              help="random 8x8 training patches")
@click.option("--batch", default=1024, show_default=True, type=click.IntRange(16), help="patches per step")
@click.option("--lr", default=2e-3, show_default=True, help="peak learning rate")
@click.option("--seed", default=0, show_default=True, help="random seed (patches, initialisation, batches)")
@click.option("--checkpoint-every", default=500, show_default=True, type=click.IntRange(1))
@click.option("--resume", is_flag=True, help="continue from the checkpoint and patch cache in --out")
def train_vae(data, out_dir, steps, hidden, patches, batch, lr, seed, checkpoint_every, resume):
    """Train the vae image model on the images in DATA (every 10th file is kept for tuning)."""
    from neuralzip.train import vae

    path = vae.run(Path(data), Path(out_dir), steps, hidden, patches, batch, lr, seed, checkpoint_every, resume,
                   log=lambda m: click.echo(m, err=True))
    click.echo(f"wrote {path}  (use it with --weights {path}, or ship it in weights/)")
