"""The neuralzip command line. Thin: the work is in api.py.

Start-up matters (a folder of short clips is compressed one process at a time):
the modules that pull in numpy, the coder and the models are imported on first
use, so `--version` and `--help` load only click."""

import importlib
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from neuralzip import __version__, limits
from neuralzip.errors import InputError, NeuralzipError
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


def _spool_stdin() -> Path:
    """stdin copied to a temporary file (in TMPDIR), so that a long recording or a large image from a
    pipe is coded chunk by chunk like one from a file; the caller removes it."""
    import shutil
    import tempfile

    with tempfile.NamedTemporaryFile(prefix="neuralzip-stdin-", delete=False) as f:
        try:
            shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
        except BaseException:
            f.close()
            os.unlink(f.name)
            raise
    return Path(f.name)


def _plan_jobs(files: tuple[str, ...], out: str | None, name: str | None):
    """-> [(output path or "-", [Source], is_archive)]."""
    from neuralzip.streaming import Source

    if "-" in files:
        if len(files) != 1:
            raise InputError("'-' (stdin) must be the only input")
        source = Source(name or "stdin", _spool_stdin(), spooled=True)
        return [("-" if out in (None, "-") else Path(out), [source], False)]
    paths = [Path(f) for f in files]
    for p in paths:
        if not p.exists():
            raise InputError(f"{p}: no such file or directory")
    if name is not None and (len(paths) != 1 or paths[0].is_dir()):
        raise InputError("--name sets the stored name of a single input file")
    if out is not None and (len(paths) > 1 or paths[0].is_dir()):
        if out == "-":
            return [("-", api.archive_sources(paths), True)]
        return [(Path(out), api.archive_sources(paths), True)]
    jobs = []
    for p in paths:
        if p.is_dir():
            jobs.append((p.parent / (p.resolve().name + ".nz"), api.archive_sources([p]), True))
        else:
            target = "-" if out == "-" else (Path(out) if out else p.with_name(p.name + ".nz"))
            jobs.append((target, [Source(name or p.name, p)], False))
    return jobs


_JOBS_HELP = "processes (0: one per core, the default); the output is the same for any number"


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option("-o", "--output", "out", help="output .nz (an archive when several inputs or a directory; - : stdout)")
@click.option("--model", default="auto", show_default=True, help="model name (see `neuralzip models`)")
@click.option("--level", default=1, show_default=True, type=click.IntRange(1, 2),
              help="1: the default; 2: stronger and slower, where the model has it (auto takes it where it can)")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), help="a user-trained weights file")
@click.option("--compare", is_flag=True, help="also measure PNG (images) / FLAC (audio)")
@click.option("--verify", is_flag=True, help="decode what was written and compare before reporting success")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per input (JSON Lines)")
@click.option("--name", help="the stored name of the one input (default: its file name; 'stdin' for -)")
@click.option("-j", "--jobs", default=0, show_default=True, type=click.IntRange(0, 1024), help=_JOBS_HELP)
@click.option("--shard-size", "shard_size", metavar="SIZE",
              help="write a shard set: archives of about SIZE each (e.g. 1G) and a manifest in directory -o")
@click.option("--scheduler", metavar="ADDRESS",
              help="code on a Dask cluster (tcp://HOST:PORT; needs neuralzip[cluster]); -o names a directory")
@click.option("--force", is_flag=True, help="overwrite existing outputs")
@click.option("-q", "--quiet", is_flag=True, help="no report, no notes")
def compress(files, out, model, level, weights, compare, verify, as_json, name, jobs, shard_size, scheduler, force,
             quiet):
    """Compress images and audio (and, in a folder, every other file) into .nz files. FILE - reads stdin."""
    from neuralzip.streaming import compress_sources

    done, notes = [], []  # reports of the files written so far: one table at the end
    to_stdout = False
    spooled = []  # stdin's temporary copy, removed at the end
    try:
        if shard_size is not None or scheduler is not None:
            _compress_shards(files, out, shard_size, model, level, weights, compare, verify, as_json, jobs,
                             force, quiet, scheduler)
            return
        plan = _plan_jobs(files, out, name)
        spooled.extend(s.path for _, sources, _ in plan for s in sources if s.spooled)
        to_stdout = any(t == "-" for t, _, _ in plan)
        if to_stdout and sys.stdout.isatty():
            raise InputError("refusing to write compressed data to a terminal")
        for target, _, _ in plan:
            if target != "-":
                check_writable(target, force)
        for target, sources, is_archive in plan:
            with api.Timer() as total:
                label = sources[0].name if len(sources) == 1 else f"{len(sources)} files"
                with _progress_bar(f"compressing {label}", quiet):
                    reports, size = compress_sources(sources, sys.stdout.buffer if target == "-" else target,
                                                     is_archive, model, weights, level, jobs, compare, verify,
                                                     keep_reports=not quiet)
            if len(reports) == 1:  # a single file: bytes = the whole .nz, time = the whole job
                reports[0].bytes = size
                reports[0].seconds = total.seconds
            for r, src in zip(reports, sources):
                r.file = str(src.path) if src.path is not None and not src.spooled else src.name
            if as_json and not quiet:
                echo_reports_to(reports, True, to_stdout)  # JSON Lines stream as each output is written
            done += reports
            if is_archive:
                notes.append(f"archive {target if target != '-' else 'on stdout'}: {len(sources)} members, "
                             f"{size} bytes")
    except NeuralzipError as exc:
        _echo_table(done, notes, as_json or quiet, to_stdout)
        _fail(exc)
    finally:
        for path in spooled:
            path.unlink(missing_ok=True)
    _echo_table(done, notes, as_json or quiet, to_stdout)


def _compress_shards(files, out, shard_size, model, level, weights, compare, verify, as_json, jobs, force, quiet,
                     scheduler=None):
    from neuralzip import shards

    if out is None or out == "-" or "-" in files:
        raise InputError("--shard-size and --scheduler write a shard set into the directory given by -o")
    size = limits.parse_size(shard_size, "--shard-size") if shard_size is not None else 1 << 62
    with _progress_bar(f"compressing into {out}", quiet):
        if scheduler is not None:
            from neuralzip import cluster

            if compare or verify:
                raise InputError("--compare and --verify are not available with --scheduler")
            reports, total = cluster.compress_on_cluster(files, out, scheduler, size, model, weights, level, force,
                                                         keep_reports=not quiet)
        else:
            reports, total = shards.compress_sharded(api.archive_sources(files), out, size, model, weights, level,
                                                     jobs, compare, verify, force, keep_reports=not quiet)
    if not quiet:
        echo_reports_to(reports, as_json, False)
        if not as_json:
            click.echo(f"shard set {out}: {len(reports)} members, {total} bytes")


def echo_reports_to(reports, as_json: bool, to_stderr: bool) -> None:
    """The report, on stderr when stdout carries the data."""
    from neuralzip.report import echo_reports

    if not to_stderr:
        echo_reports(reports, as_json=as_json)
        return
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        echo_reports(reports, as_json=as_json)
    click.echo(buf.getvalue(), err=True, nl=False)


def _echo_table(reports, notes, silent: bool, to_stderr: bool = False) -> None:
    if not silent:
        echo_reports_to(reports, False, to_stderr)
        for line in notes:
            click.echo(line, err=to_stderr)


_MAX_MEMORY_HELP = (f"refuse, before decoding, a member that would need more memory than SIZE (e.g. 512M, 4G; "
                    f"0: no limit)  [default: {limits.DEFAULT_MAX_MEMORY >> 30}G]")


def _parse_max_memory(ctx, param, value):
    try:
        return limits.parse_size(value)
    except InputError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[-1]) from None


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option("-o", "--output", "out",
              help="output file (single member), directory (archive), or - (stdout: one member)")
@click.option("-m", "--member", "members", multiple=True, metavar="NAME_OR_GLOB",
              help="extract only the members with this name or matching this glob (repeatable)")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), help="the weights file the .nz was made with")
@click.option("--max-memory", "max_memory", metavar="SIZE", default=f"{limits.DEFAULT_MAX_MEMORY >> 30}G",
              callback=_parse_max_memory, help=_MAX_MEMORY_HELP)
@click.option("-j", "--jobs", default=0, show_default=True, type=click.IntRange(0, 1024), help=_JOBS_HELP)
@click.option("--force", is_flag=True, help="overwrite existing outputs")
@click.option("-q", "--quiet", is_flag=True, help="no messages")
def decompress(files, out, members, weights, max_memory, jobs, force, quiet):
    """Restore the original files from .nz files, exactly. FILE - reads stdin (to stdout without -o)."""
    from neuralzip import streaming

    try:
        if "-" in files and len(files) != 1:
            raise InputError("'-' (stdin) must be the only input")
        if out == "-" and len(files) != 1:
            raise InputError("-o - writes one member of one .nz to stdout")
        for f in files:
            if f == "-":
                if members:
                    raise InputError("--member needs a seekable .nz file, not stdin")
                targets = streaming.extract_stream(sys.stdin.buffer, None if out == "-" else out, force, weights,
                                                   max_memory, sys.stdout.buffer if out in (None, "-") else None)
            else:
                targets = streaming.extract(f, None if out == "-" else out, members, force, jobs, weights,
                                            max_memory, to_stream=sys.stdout.buffer if out == "-" else None,
                                            around=lambda name: _progress_bar(f"decompressing {name}", quiet))
            for t in targets:
                _note(f"restored {t}", quiet)
    except NeuralzipError as exc:
        _fail(exc)


@cli.command("ls")
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per member (JSON Lines)")
def ls_cmd(file, as_json):
    """List the members of a .nz (name, kind, shape, bytes, bits per dimension) from its table alone."""
    import json

    from neuralzip.streaming import list_rows

    try:
        rows = list_rows(file, limits.DEFAULT_MAX_MEMORY)
    except NeuralzipError as exc:
        _fail(exc)
    if as_json:
        sys.stdout.write("".join(json.dumps({"name": n, "kind": k, "shape": list(sh), "bits": b, "model": mo,
                                             "bytes": sz, "bpd": round(8 * sz / d, 6) if d else 0.0}) + "\n"
                                 for n, k, sh, b, mo, sz, d in rows))
        return
    width = max(len(r[0]) for r in rows)
    sys.stdout.write("".join(f"{n:<{width}}  {k:<5}  {'x'.join(map(str, sh)):>14}  {sz:>10}  "
                             f"{8 * sz / d if d else 0.0:8.4f}\n" for n, k, sh, _, _, sz, d in rows))


@cli.command("test")
@click.argument("files", nargs=-1, required=True)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), help="the weights file the .nz was made with")
@click.option("--max-memory", "max_memory", metavar="SIZE", default=f"{limits.DEFAULT_MAX_MEMORY >> 30}G",
              callback=_parse_max_memory, help=_MAX_MEMORY_HELP)
@click.option("-j", "--jobs", default=0, show_default=True, type=click.IntRange(0, 1024), help=_JOBS_HELP)
@click.option("-q", "--quiet", is_flag=True, help="print only the files that fail")
def test_cmd(files, weights, max_memory, jobs, quiet):
    """Check .nz files: decode every member and verify its checksum, writing nothing.

    One line per file; exit 0 when every file is intact, 1 when any is not."""
    failed = 0
    for f in files:
        try:
            n = api.test_file(f, weights, max_memory, jobs)
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
    click.echo(f"{file}: neuralzip container v{top.get('version', 1)}, {len(blob)} bytes, "
               f"written by neuralzip {top.get('neuralzip')} with constriction {top.get('constriction')}"
               + (", archive" if top.get("archive") else ""))
    for m, share in zip(members, api.payload_shares(members)):
        d = api.member_report(m, m.name, share, 0.0).as_dict()
        # members of one bits-back chain share its stream (stored with the first): show each one's share
        chain = api.chain_note(m)
        click.echo(f"  {m.name}: {m.kind} {d['shape']}, model {m.model} level {d['level']}"
                   f"{' weights ' + m.weights if m.weights else ''}, {len(m.chunks)} chunk(s), "
                   f"{share} bytes{chain}, {d['bpd']:.4f} bpd (model {d['nll_bpd']:.4f}), "
                   f"format {m.meta.get('format')}, checksum {m.sha256[:16]}")


@cli.command()
def models():
    """List the models and what they handle."""
    from neuralzip.models import AUTO, DECODED_JPEG, STRONG, all_codecs

    for c in sorted(all_codecs(), key=lambda c: (c.kind, c.name)):
        auto = (" (auto)" if AUTO[c.kind] == c.name else " (auto --level 2)" if STRONG.get(c.kind) == c.name
                else " (auto, for decoded JPEGs)" if c.name == DECODED_JPEG else "")
        weights = c.weights_hash or "no weights"
        levels = f"levels {','.join(map(str, c.levels))}"
        click.echo(f"{c.name:<12} {c.kind:<6} {weights:<16} {levels:<10} {c.summary}{auto}")


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--models", default="context-mlp,ols-cascade,lpc-nlms-mlp,classic,histogram", show_default=True,
              help="comma-separated neuralzip models; MODEL@LEVEL for another of a model's levels (auto@2)")
@click.option("--out", "out_dir", default="bench-results", show_default=True, type=click.Path(file_okay=False),
              help="folder for results.json, report.md and the charts")
@click.option("-j", "--jobs", default=0, show_default=True, type=click.IntRange(0, 1024),
              help="files benchmarked in parallel (0: one per core)")
@click.option("-q", "--quiet", is_flag=True, help="no progress, no summary")
def bench(paths, models, out_dir, jobs, quiet):
    """Compare neuralzip models with PNG, optipng, WebP, JPEG XL, FLAC and WavPack."""
    from neuralzip import bench as benchmod
    from neuralzip import benchreport

    try:
        wanted = [m.strip() for m in models.split(",") if m.strip()]
        for spec in wanted:
            benchmod.model_level(spec)  # a one-line error for an unknown model or level
        inputs = benchmod.find_inputs(list(paths))
        total = sum(benchmod.codec_count(kind, wanted) for _, kind in inputs)
        show = not quiet and sys.stderr.isatty()
        with click.progressbar(length=total, label="benchmarking", file=sys.stderr,
                               item_show_func=lambda r: r and f"{Path(r['file']).name}: {r['codec']}") if show \
                else _Silent() as bar:
            from neuralzip.parallel import resolve_jobs

            rows = benchmod.run(inputs, wanted, resolve_jobs(jobs), lambda row: bar.update(1, row))
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


@train.command("lpc-nlms-mlp")
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
    """Train the lpc-nlms-mlp audio model (alias: audio) on the recordings in DATA (every 10th file is kept for tuning)."""
    from neuralzip.train import audio

    path = audio.run(Path(data), Path(out_dir), hidden, steps, batch, lr, every, seed,
                     log=lambda m: click.echo(m, err=True))
    click.echo(f"wrote {path}  (use it with --weights {path}, or ship it in weights/)")


def _with_options(f, options):
    """Apply click decorators in the order they are listed (as if stacked above f in that order)."""
    for option in reversed(options):
        f = option(f)
    return f


def _image_network_options(f):
    """The options of the image models whose network is trained (context-mlp, local-ls-mlp)."""
    options = [
        click.argument("data", type=click.Path(exists=True, file_okay=False)),
        click.option("-o", "--out", "out_dir", default="weights", show_default=True, type=click.Path(file_okay=False),
                     help="folder for the weights file, the checkpoint and the feature cache"),
        click.option("--steps", default=20000, show_default=True, type=click.IntRange(10), help="optimizer steps"),
        click.option("--hidden", default=32, show_default=True, type=click.IntRange(4, 256),
                     help="hidden units per layer"),
        click.option("--mixtures", default=3, show_default=True, type=click.IntRange(1, 8), help="logistic components"),
        click.option("--crops", default=4, show_default=True, type=click.IntRange(1), help="random crops per image"),
        click.option("--crop-size", default=224, show_default=True, type=click.IntRange(8), help="crop side in pixels"),
        click.option("--batch", default=4096, show_default=True, type=click.IntRange(16), help="values per step"),
        click.option("--lr", default=3e-3, show_default=True, help="peak learning rate"),
        click.option("--seed", default=0, show_default=True, help="random seed (crops, initialisation, batches)"),
        click.option("--checkpoint-every", default=500, show_default=True, type=click.IntRange(1)),
        click.option("--resume", is_flag=True, help="continue from the checkpoint and feature cache in --out"),
        click.option("--augment", is_flag=True,
                     help="also learn each crop saved as a JPEG and decoded, and a region shrunk 2x to the crop"),
    ]
    return _with_options(f, options)


def _train_image_network(model, data, out_dir, steps, hidden, mixtures, crops, crop_size, batch, lr, seed,
                         checkpoint_every, resume, augment):
    from neuralzip.train import image

    path = image.run(Path(data), Path(out_dir), steps, hidden, mixtures, crops, crop_size, batch, lr, seed,
                     checkpoint_every, resume, log=lambda m: click.echo(m, err=True), model=model, augment=augment)
    click.echo(f"wrote {path}  (use it with --weights {path}, or ship it in weights/)")


@train.command("context-mlp")
@_image_network_options
def train_image(**kwargs):
    """Train the context-mlp image model (alias: image) on the images in DATA (every 10th file is kept for tuning)."""
    _train_image_network("context-mlp", **kwargs)


@train.command("local-ls-mlp")
@_image_network_options
def train_local_ls_mlp(**kwargs):
    """Train local-ls-mlp's network (over local-ls's blend) on the images in DATA (every 10th file kept for tuning)."""
    _train_image_network("local-ls-mlp", **kwargs)


@train.command("vae")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", "out_dir", default="weights", show_default=True, type=click.Path(file_okay=False),
              help="folder for the weights file, the checkpoint and the patch cache")
@click.option("--steps", default=12000, show_default=True, type=click.IntRange(10), help="optimizer steps")
@click.option("--hidden", default=512, show_default=True, type=click.IntRange(8, 512),
              help="hidden units per layer (at most 512: int8 x uint8 sums stay exact in float32)")
@click.option("--patches", default=3_000_000, show_default=True, type=click.IntRange(1000),
              help="random 8x8 training patches (each with its context rows and columns)")
@click.option("--batch", default=1024, show_default=True, type=click.IntRange(16), help="patches per step")
@click.option("--lr", default=2e-3, show_default=True, help="peak learning rate")
@click.option("--seed", default=0, show_default=True, help="random seed (patches, initialisation, batches)")
@click.option("--checkpoint-every", default=500, show_default=True, type=click.IntRange(1))
@click.option("--resume", is_flag=True, help="continue from the checkpoint and patch cache in --out")
@click.option("--requantize", type=click.Path(exists=True, dir_okay=False),
              help="no training: quantize this weights file's encoder again, calibrated on DATA's training "
                   "patches (how v2 was made from v1)")
@click.option("--add-counts", type=click.Path(exists=True, dir_okay=False),
              help="no training: this weights file (v3 on) with the neighbour counts, their taps and shares "
                   "fitted on DATA's training files, priced on its tuning files (v6's first step, from v3)")
@click.option("--for-mixture", type=click.Path(exists=True, dir_okay=False),
              help="train this weights file's networks (with neighbour counts, v4 on) further on their mixture "
                   "with the counts, --steps steps at --lr, then fit the counts anew (v6's second step)")
def train_vae(data, out_dir, steps, hidden, patches, batch, lr, seed, checkpoint_every, resume, requantize,
              add_counts, for_mixture):
    """Train the vae image model on the images in DATA (every 10th file is kept for tuning)."""
    from neuralzip.train import vae

    log = lambda m: click.echo(m, err=True)  # noqa: E731
    if sum(map(bool, (add_counts, requantize, for_mixture))) > 1:
        raise click.UsageError("--add-counts, --requantize and --for-mixture are separate jobs: give one")
    try:  # a weights file that is not one, or lacks what the job needs: one line, not a traceback
        if for_mixture:
            path = vae.train_for_mixture(Path(for_mixture), Path(data), Path(out_dir), steps, hidden, batch, lr,
                                         seed, checkpoint_every, resume, log)
        elif add_counts:
            path = vae.add_counts(Path(add_counts), Path(data), Path(out_dir), log)
        elif requantize:
            path = vae.requantize(Path(requantize), Path(data), Path(out_dir), seed, log)
        else:
            path = vae.run(Path(data), Path(out_dir), steps, hidden, patches, batch, lr, seed, checkpoint_every,
                           resume, log=log)
    except NeuralzipError as exc:
        _fail(exc)
    click.echo(f"wrote {path}  (use it with --weights {path}, or ship it in weights/)")


def _patch_model_options(f):
    """The options the patch models' trainers (made, nade) share (neuralzip/train/patch.py)."""
    options = [
        click.argument("data", type=click.Path(exists=True, file_okay=False)),
        click.option("-o", "--out", "out_dir", default="weights", show_default=True, type=click.Path(file_okay=False),
                     help="folder for the weights file, the checkpoint and the patch cache"),
        click.option("--mixtures", default=2, show_default=True, type=click.IntRange(1, 8), help="logistic components"),
        click.option("--crops", default=30, show_default=True, type=click.IntRange(1), help="random crops per image"),
        click.option("--crop-size", default=128, show_default=True, type=click.IntRange(4), help="crop side in pixels"),
        click.option("--seed", default=0, show_default=True, help="random seed (crops, initialisation, batches)"),
        click.option("--checkpoint-every", default=1000, show_default=True, type=click.IntRange(1)),
        click.option("--resume", is_flag=True, help="continue from the checkpoint and patch cache in --out"),
    ]
    return _with_options(f, options)


def _train_patch_model(name, hyper, data, out_dir, steps, mixtures, crops, crop_size, batch, lr, seed, checkpoint_every,
                       resume):
    import importlib

    from neuralzip.train import patch

    path = patch.run(importlib.import_module(f"neuralzip.train.{name}"), Path(data), Path(out_dir), hyper, steps,
                     mixtures, crops, crop_size, batch, lr, seed, checkpoint_every, resume,
                     log=lambda m: click.echo(m, err=True))
    click.echo(f"wrote {path}  (use it with --weights {path}, or ship it in weights/)")


@train.command("made")
@_patch_model_options
@click.option("--steps", default=24000, show_default=True, type=click.IntRange(10), help="optimizer steps")
@click.option("--hidden", default=768, show_default=True, type=click.IntRange(48, 2048),
              help="units per masked hidden layer (at least one per patch value)")
@click.option("--layers", default=2, show_default=True, type=click.IntRange(1, 4), help="masked hidden layers")
@click.option("--batch", default=512, show_default=True, type=click.IntRange(16), help="patches per step")
@click.option("--lr", default=2e-3, show_default=True, help="peak learning rate")
def train_made(hidden, layers, **kwargs):
    """Train the made image model on the images in DATA (every 10th file is kept for tuning)."""
    _train_patch_model("made", {"hidden": hidden, "layers": layers}, **kwargs)


@train.command("nade")
@_patch_model_options
@click.option("--steps", default=14000, show_default=True, type=click.IntRange(10), help="optimizer steps")
@click.option("--hidden", default=384, show_default=True, type=click.IntRange(8, 2048),
              help="sigmoid units of the shared hidden layer")
@click.option("--batch", default=256, show_default=True, type=click.IntRange(16), help="patches per step")
@click.option("--lr", default=3e-3, show_default=True, help="peak learning rate")
def train_nade(hidden, **kwargs):
    """Train the nade image model on the images in DATA (every 10th file is kept for tuning)."""
    _train_patch_model("nade", {"hidden": hidden}, **kwargs)


def _pixel_model_options(f):
    """The options the per-pixel models' trainers (gated-pixelcnn, pixelrnn) share (neuralzip/train/pixel.py)."""
    options = [
        click.argument("data", type=click.Path(exists=True, file_okay=False)),
        click.option("-o", "--out", "out_dir", default="weights", show_default=True, type=click.Path(file_okay=False),
                     help="folder for the weights file, the checkpoint and the crop cache"),
        click.option("--channels", default=32, show_default=True, type=click.IntRange(4, 128),
                     help="width of every layer"),
        click.option("--head", default=64, show_default=True, type=click.IntRange(8, 512),
                     help="units of the head's hidden layer"),
        click.option("--mixtures", default=4, show_default=True, type=click.IntRange(1, 8),
                     help="logistic components per channel"),
        click.option("--crops", default=400, show_default=True, type=click.IntRange(1), help="random crops per image"),
        click.option("--crop-size", default=32, show_default=True, type=click.IntRange(4), help="crop side in pixels"),
        click.option("--batch", default=16, show_default=True, type=click.IntRange(1), help="crops per step"),
        click.option("--lr", default=2e-3, show_default=True, help="peak learning rate"),
        click.option("--seed", default=0, show_default=True, help="random seed (crops, initialisation, batches)"),
        click.option("--checkpoint-every", default=500, show_default=True, type=click.IntRange(1)),
        click.option("--resume", is_flag=True, help="continue from the checkpoint and crop cache in --out"),
    ]
    return _with_options(f, options)


def _train_pixel_model(name, data, out_dir, steps, channels, layers, head, mixtures, crops, crop_size, batch, lr, seed,
                       checkpoint_every, resume):
    import importlib

    from neuralzip.train import pixel

    module = importlib.import_module(f"neuralzip.train.{name.replace('-', '_')}")
    path = pixel.run(module, Path(data), Path(out_dir), {"channels": channels, "layers": layers, "head": head}, steps,
                     mixtures, crops, crop_size, batch, lr, seed, checkpoint_every, resume,
                     log=lambda m: click.echo(m, err=True))
    click.echo(f"wrote {path}  (use it with --weights {path}, or ship it in weights/)")


@train.command("gated-pixelcnn")
@_pixel_model_options
@click.option("--steps", default=12000, show_default=True, type=click.IntRange(10), help="optimizer steps")
@click.option("--layers", default=5, show_default=True, type=click.IntRange(1, 16), help="gated layers per stack")
def train_gated_pixelcnn(**kwargs):
    """Train the gated-pixelcnn image model on the images in DATA (every 10th file is kept for tuning)."""
    _train_pixel_model("gated-pixelcnn", **kwargs)


@train.command("pixelrnn")
@_pixel_model_options
@click.option("--steps", default=10000, show_default=True, type=click.IntRange(10), help="optimizer steps")
@click.option("--layers", default=2, show_default=True, type=click.IntRange(1, 16), help="Row LSTM layers")
def train_pixelrnn(**kwargs):
    """Train the pixelrnn (Row LSTM) image model on the images in DATA (every 10th file is kept for tuning)."""
    _train_pixel_model("pixelrnn", **kwargs)


@train.command("wavenet")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", "out_dir", default="weights", show_default=True, type=click.Path(file_okay=False),
              help="folder for the weights file and the checkpoint")
@click.option("--steps", default=8000, show_default=True, type=click.IntRange(10), help="optimizer steps")
@click.option("--channels", default=16, show_default=True, type=click.IntRange(2, 128), help="residual channels")
@click.option("--layers", default=10, show_default=True, type=click.IntRange(1, 14),
              help="dilated layers (dilations 1, 2, 4, ...: a receptive field of 2**layers samples)")
@click.option("--skip", default=32, show_default=True, type=click.IntRange(1, 256), help="skip channels")
@click.option("--hidden", default=32, show_default=True, type=click.IntRange(1, 256), help="units of the head's hidden layer")
@click.option("--mixtures", default=3, show_default=True, type=click.IntRange(1, 8), help="logistic components")
@click.option("--batch", default=8, show_default=True, type=click.IntRange(1), help="windows per step")
@click.option("--window", default=4096, show_default=True, type=click.IntRange(16), help="samples per window")
@click.option("--lr", default=2e-3, show_default=True, help="peak learning rate")
@click.option("--seed", default=0, show_default=True, help="random seed (initialisation, batches)")
@click.option("--checkpoint-every", default=250, show_default=True, type=click.IntRange(1))
@click.option("--balance-sources", is_flag=True,
              help="give every source folder under DATA the same share of the windows, whatever its size")
@click.option("--resume", is_flag=True, help="continue from the checkpoint in --out")
def train_wavenet(data, out_dir, steps, channels, layers, skip, hidden, mixtures, batch, window, lr, seed,
                  checkpoint_every, balance_sources, resume):
    """Train the wavenet audio model on the recordings in DATA (every 10th file is kept for tuning)."""
    from neuralzip.train import wavenet

    path = wavenet.run(Path(data), Path(out_dir), steps, mixtures, channels, layers, skip, hidden, batch, window, lr,
                       seed, checkpoint_every, resume, balance_sources, log=lambda m: click.echo(m, err=True))
    click.echo(f"wrote {path}  (use it with --weights {path}, or ship it in weights/)")


# `neuralzip train MODEL DIR` names the model; 0.1.0's `train audio` and `train image` stay as aliases.
train.add_command(train_audio, "audio")
train.add_command(train_image, "image")
