"""Scripts run from a checkout of the repository, not installed: training, bundling and synthetic data.

`train.py`, `bundle_model.py`, `carvana_sample.py` and the synthetic-data generator `synthetic/`. The trainer that
`train.py` calls is the installed package `carseg_hf.training`.
"""
