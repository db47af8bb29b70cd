"""`python -m solutions train|submission|notebook|data`: thin wrappers over the library.

python -m solutions train <id>|all [--device auto|cpu|cuda] [--quick] [--seed N] [--epochs N]
python -m solutions search <id> [--storage URL] [--workers N] [--trials N] [--quick]
python -m solutions submission <id> OUT_DIR
python -m solutions notebook <id>|all        # rewrite source/<id>/<id>.ipynb
python -m solutions data [<dataset>]          # find or unpack the data, print its root
python -m solutions data --fixtures DIR       # write generated stand-ins of every data set
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path

import torch

from grader.manifest import UnknownAssignmentError, load_manifest
from solutions import notebook_builder
from solutions.data import DATA_ENV, DATASETS, DataNotFoundError, resolve_root, write_fixtures
from solutions.expected import expected_file
from solutions.paths import EXPECTED_DIR, REPORTS_DIR, SOURCE_DIR, WEIGHTS_DIR
from solutions.plots import run_title
from solutions.registry import assignment, selected
from solutions.submission import write_submission


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda asked for, but torch sees no CUDA device")
    return torch.device(name)


def train_command(args: argparse.Namespace) -> int:
    device = _device(args.device)
    for found in selected(args.assignment):
        manifest = load_manifest(found.id)
        # A quick run proves the code paths, not the accuracy: it must never replace the
        # committed expected answers unless asked to.
        default_out = REPORTS_DIR / found.id / "quick" if args.quick else EXPECTED_DIR
        out_dir = args.output_dir or default_out
        weights_dir = (
            out_dir / "weights" if args.quick or args.output_dir else WEIGHTS_DIR / found.id
        )
        # Fewer epochs than the assignment's own: only a training that takes `epochs` can.
        short = {"epochs": args.epochs} if args.epochs else {}
        if short and "epochs" not in inspect.signature(found.train).parameters:
            raise SystemExit(f"error: {found.id}'s training takes no --epochs")
        result = found.train(manifest, device, args.seed, weights_dir, quick=args.quick, **short)
        expected = expected_file(manifest, result, device, args.seed, args.quick)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{found.id}.json"
        path.write_text(json.dumps(expected, indent=2) + "\n")
        if expected["provenance"]["dirty"]:
            print(
                f"warning: {path} was made by code with uncommitted changes (it says "
                '"dirty": true): commit them and train again before committing it',
                file=sys.stderr,
            )
        figures = args.output_dir or REPORTS_DIR / found.id / ("quick" if args.quick else "")
        title = run_title(manifest.title, result.histories, args.quick)
        written = found.figures(manifest, result, figures, title, args.quick)
        for key, acc in result.test_accuracy.items():
            entry = expected["accuracy"][key]
            source = "" if entry.get("measured", True) else " (from the manifest: not real data)"
            print(
                f"{found.id}/{key}: test accuracy {acc:.4f}, "
                f"grader threshold {entry['threshold']:.2f}{source}"
            )
        shown = ", ".join(str(f) for f in written)
        print(f"wrote {path}, {shown} and weights in {weights_dir} ({result.seconds:.0f} s)")
    return 0


def search_command(args: argparse.Namespace) -> int:
    """Hand over to the assignment's own search (`solutions/<id>/search.py`)."""
    search = assignment(args.assignment).search
    if search is None:
        raise SystemExit(f"error: {args.assignment} has no hyper-parameter search")
    return search(args)


def notebook_command(args: argparse.Namespace) -> int:
    for found in selected(args.assignment):
        manifest = load_manifest(found.id)
        path = SOURCE_DIR / found.id / manifest.notebook
        cells = found.notebook(manifest)
        notebook_builder.write(notebook_builder.build(cells), path)
        precheck = path.with_name("precheck.py")
        precheck.write_text(notebook_builder.precheck_script(manifest, cells))
        files = found.files(path.parent) if found.files else []
        print(f"wrote {path}, {precheck}" + "".join(f", {f}" for f in files))
    return 0


def submission_command(args: argparse.Namespace) -> int:
    manifest = load_manifest(args.assignment)
    path = write_submission(manifest, args.out_dir)
    print(f"wrote {path} and {', '.join(manifest.submit_files[1:])}")
    return 0


def data_command(args: argparse.Namespace) -> int:
    if args.fixtures:
        root = args.fixtures.expanduser().resolve()
        sizes = write_fixtures(root, seed=args.seed)
        for name, (n_train, n_test) in sizes.items():
            folder = root / DATASETS[name].folder
            print(f"{name}: {n_train} training and {n_test} test images in {folder}")
        print(f"generated stand-ins, not the real data sets: export {DATA_ENV}={root}")
        return 0
    root = resolve_root(args.dataset)
    print(f"{args.dataset}: {root.root} (found via {root.source})")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m solutions", description="reference package")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the reference models, write expected answers")
    train.add_argument("assignment", help="assignment id or 'all'")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    train.add_argument("--quick", action="store_true", help="1 epoch on a small subset")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--epochs",
        type=int,
        help="fewer epochs per run than the sheet's, on a machine too slow for the full run "
        "(cnn_techniques; its accuracies are then written as unmeasured, with the reason)",
    )
    train.add_argument(
        "--output-dir",
        type=Path,
        help="folder for the expected JSON, weights and figure "
        "(default: grader/expected, or reports/<id>/quick with --quick)",
    )
    train.set_defaults(run=train_command)
    search = sub.add_parser("search", help="run an assignment's reference hyper-parameter search")
    search.add_argument("assignment")
    search.add_argument(
        "--storage",
        help="Optuna storage URL, e.g. postgresql://user@host/db (default: an SQLite file, "
        "search.db beside the figures; a --quick run's is temporary)",
    )
    search.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    search.add_argument("--trials", type=int, help="trials in all (default: the assignment's)")
    search.add_argument("--quick", action="store_true", help="a few trials on a few images")
    search.add_argument("--seed", type=int, default=0)
    search.add_argument(
        "--output-dir",
        type=Path,
        help="folder for the result and figures (default: the result in solutions/<id>/, where "
        "train reads it, the figures in reports/<id>/, or both in reports/<id>/quick with --quick)",
    )
    # A worker: join the stage study STUDY in --storage and run --trials of its trials. The
    # search starts these itself; on another machine (a server's --storage), the same command
    # with the run's --seed and an unused --worker-index (its sampler's seed) adds a worker.
    search.add_argument("--join", metavar="STUDY", help=argparse.SUPPRESS)
    search.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    search.set_defaults(run=search_command)
    notebook = sub.add_parser("notebook", help="rebuild the source notebook from solutions/<id>")
    notebook.add_argument("assignment")
    notebook.set_defaults(run=notebook_command)
    submission = sub.add_parser("submission", help="write the reference submission")
    submission.add_argument("assignment")
    submission.add_argument("out_dir", type=Path)
    submission.set_defaults(run=submission_command)
    data = sub.add_parser("data", help="locate (and unpack) a data set, or write fixtures")
    data.add_argument("dataset", nargs="?", default="fashion_mnist")
    data.add_argument(
        "--fixtures",
        type=Path,
        metavar="DIR",
        help="write small generated MNIST, Fashion-MNIST and CIFAR-10 stand-ins (real file "
        f"formats) into DIR, for {DATA_ENV}=DIR",
    )
    data.add_argument("--seed", type=int, default=0, help="seed of the generated fixtures")
    data.set_defaults(run=data_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (UnknownAssignmentError, DataNotFoundError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
