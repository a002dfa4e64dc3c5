"""Hugging Face Space entry point: the carseg car-segmentation demo.

The model is `$CARSEG_MODEL` (a folder or Hub id) when set, else the checkpoint bundled with `carseg_hf`. On the Space,
`carseg_hf` is the package source uploaded next to this file by `space/deploy.py`. Locally: `python space/app.py` or
`carseg demo`.
"""

from carseg_hf.cpu_runtime import retain_freed_memory
from carseg_hf.demo.app import build_demo

retain_freed_memory()  # reuse freed activation memory instead of faulting in fresh pages (see carseg_hf.cpu_runtime)
demo = build_demo()

if __name__ == "__main__":
    demo.launch()  # build_demo's upload limit (MAX_UPLOAD_SIZE) applies
