"""Loading segmentation data sets as `datasets.DatasetDict`: Kaggle Carvana folders, image/mask pair folders, Hub.

Every loader returns splits `train` and `validation` (and `test` for a Carvana folder with `test/`), with columns:

- `image`: `datasets.Image()` (the photo);
- `mask`: `datasets.Image()`: the original mask file (Carvana's palette GIFs hold 0/1), or a 0/255 "L" PNG decoded
  from `train_masks.csv`. Decode it with `carseg_hf.image_io.load_mask` (or [`read_mask`]), which normalises every
  encoding to 0/1;
- `car_id` (str) and `angle` (int), so that train and validation never share a car;
- `name`: the image's file name, e.g. `0004d4463b50_01.jpg`.

File names and sizes are checked from the image headers when loading (cheap); pixel data is decoded when read.

Modules, one source or concern each:

- `detect`: `load_segmentation_dataset`, which picks the loader below from the folder's layout or a Hub id.
- `carvana`: `load_carvana`, a folder in the Kaggle Carvana layout.
- `pair_folder`: `load_pair_folder`, a folder of image/mask pairs.
- `hub_dataset`: `load_hub_dataset`, a data set on the Hugging Face Hub.
- `splits`: `split_by_car` and turning rows into `train`/`validation`/`heldout` splits (`splits.json`).
- `files`: listing a local folder, checking image headers, and the cells that files become.
- `readers`: `read_image`, `read_mask` and `entry_source`, which decode a data set's cells through `image_io`.

The names below are importable from `carseg_hf.data` itself.
"""

from __future__ import annotations

from .carvana import load_carvana
from .detect import load_segmentation_dataset
from .hub_dataset import load_hub_dataset
from .pair_folder import load_pair_folder
from .readers import entry_source, read_image, read_mask
from .splits import split_by_car

__all__ = [
    "entry_source",
    "load_carvana",
    "load_hub_dataset",
    "load_pair_folder",
    "load_segmentation_dataset",
    "read_image",
    "read_mask",
    "split_by_car",
]
