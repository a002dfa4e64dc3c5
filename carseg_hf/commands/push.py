"""`carseg push`: publish a checkpoint folder to the Hugging Face Hub in one atomic commit."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the `push` sub-command."""
    parser = subparsers.add_parser(
        "push",
        help="upload a checkpoint folder (safetensors, config, code, model card) to the Hub",
        description=(
            "Upload config.json, model.safetensors, preprocessor_config.json, the model code named by auto_map and "
            "a README.md model card (the folder's own, or a generated one) to a Hub model repo, in one commit: a "
            "failed upload leaves the repo as it was. Prints the commit sha, to pin with revision=."
        ),
    )
    parser.add_argument(
        "checkpoint_dir", metavar="CHECKPOINT_DIR", type=Path, help="folder written by save_pretrained"
    )
    parser.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="target model repo (created if needed)")
    parser.add_argument(
        "--private", action="store_true", help="create the repo as private; an existing public repo is refused"
    )
    parser.add_argument(
        "--revision", default=None, help="branch to commit to, created from main if needed (default: main)"
    )
    parser.add_argument("--token", default=None, help="Hub token (default: stored login or $HF_TOKEN)")
    parser.add_argument("--commit-message", default=None, help='commit summary (default: "Upload carseg checkpoint")')
    parser.add_argument(
        "--metrics",
        type=Path,
        default=None,
        metavar="JSON",
        help="JSON file of evaluation results for the model card: training's OUTPUT_DIR/all_results.json, or any "
        'file holding e.g. {"eval_dice": 0.995}',
    )
    parser.add_argument(
        "--card",
        default="auto",
        metavar="{auto,folder,generate}",  # checked by hub.push_checkpoint, not imported here: --help stays fast
        help="model card: the folder's README.md if present, else a generated one (auto, the default); only the "
        "folder's (folder); or always a generated one (generate, needed with --metrics when the folder has a card)",
    )
    parser.set_defaults(func=run)
    return parser


def _load_metrics(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise FileNotFoundError(f"metrics file {str(path)!r} does not exist") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"metrics file {str(path)!r} is not readable JSON: {error}") from error
    if not isinstance(metrics, dict):
        raise ValueError(f'metrics file {str(path)!r} must hold a JSON object such as {{"eval_dice": 0.99}}')
    from carseg_hf.model_card import dice_from_metrics

    try:
        dice_from_metrics(metrics)
    except ValueError as error:
        raise ValueError(f"metrics file {str(path)!r}: {error}") from error
    return metrics


def run(args: argparse.Namespace) -> int:
    """Push the checkpoint and print the commit sha."""
    from carseg_hf.hub import push_checkpoint

    sha = push_checkpoint(
        args.checkpoint_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        token=args.token,
        commit_message=args.commit_message,
        metrics=_load_metrics(args.metrics),
        card=args.card,
    )
    print(f"pushed {args.checkpoint_dir} to {args.repo_id} (revision {args.revision or 'main'}), commit {sha}")
    print(f"pin it with: from_pretrained({args.repo_id!r}, revision={sha!r})")
    return 0
