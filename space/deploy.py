"""Deploy the demo as a Hugging Face Space: assemble the Space folder, then upload it.

A Space installs only published packages (`requirements.txt`), and `carseg-hf` is not published, so the Space
carries the `carseg_hf` package source next to `app.py`, which imports it from there. From the repository root:

    python space/deploy.py OWNER/SPACE_NAME              # create the Space if needed and upload (Hub token needed)
    python space/deploy.py --assemble-only build/space    # write the folder only, e.g. to try `python app.py` in it

The assembled folder holds `app.py`, `README.md` (the Spaces YAML header), `requirements.txt` and `carseg_hf/`
(with the bundled models and the examples; no `__pycache__`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

#: This folder: the Space's own files.
SPACE_DIR = Path(__file__).resolve().parent
#: The repository, which holds the package the Space runs.
REPO_ROOT = SPACE_DIR.parent
#: The Space's own files, copied as they are.
SPACE_FILES = ("app.py", "README.md", "requirements.txt")
#: The package copied next to `app.py`.
PACKAGE = "carseg_hf"
#: Build leftovers that are not copied.
IGNORED = ("__pycache__", "*.pyc", "*.pyo")


def assemble_space(out_dir: str | Path) -> Path:
    """Write the Space folder: the files of `space/` and the `carseg_hf` package beside them.

    Args:
        out_dir: A folder that does not exist yet or is empty.

    Returns:
        The folder written.

    Raises:
        FileExistsError: If `out_dir` exists and is not empty (nothing is overwritten).
    """
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; pass a new or empty folder for the Space")
    out.mkdir(parents=True, exist_ok=True)
    for name in SPACE_FILES:
        shutil.copy2(SPACE_DIR / name, out / name)
    shutil.copytree(REPO_ROOT / PACKAGE, out / PACKAGE, ignore=shutil.ignore_patterns(*IGNORED))
    return out


def push_space(repo_id: str, token: str | None = None, private: bool = False) -> str:
    """Create the Space `repo_id` (Gradio SDK) if needed and upload the assembled folder to it in one commit.

    Files of an earlier `carseg_hf/` copy that the new one no longer has are deleted in the same commit.

    Args:
        repo_id: `OWNER/SPACE_NAME`.
        token: A Hub token with write access; None uses the saved login or `$HF_TOKEN`.
        private: Whether a newly created Space is private.

    Returns:
        The URL of the commit.
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="carseg-space-") as scratch:
        folder = assemble_space(Path(scratch) / "space")
        info = api.upload_folder(
            repo_id=repo_id,
            repo_type="space",
            folder_path=folder,
            commit_message="Deploy the carseg demo",
            delete_patterns=[f"{PACKAGE}/**"],
        )
    return info.commit_url


def main(argv: list[str] | None = None) -> int:
    """Command line: upload to a Space, or only assemble the folder; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python space/deploy.py", description=__doc__.split("\n")[0])
    parser.add_argument("target", help="OWNER/SPACE_NAME to upload to, or with --assemble-only the folder to write")
    parser.add_argument("--assemble-only", action="store_true", help="write the Space folder, upload nothing")
    parser.add_argument("--private", action="store_true", help="create the Space as private (when it is new)")
    args = parser.parse_args(argv)
    if args.assemble_only:
        try:
            print(f"assembled the Space in {assemble_space(args.target)}")
        except FileExistsError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    if args.target.count("/") != 1:
        parser.error(f"expected OWNER/SPACE_NAME, got {args.target!r}")
    print(f"uploaded: {push_space(args.target, private=args.private)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
