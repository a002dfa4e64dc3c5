"""Train a carseg model with Accelerate and HF Datasets: the reference Carvana recipe, resumable and multi-GPU.

This script is the entry point for launchers, run from a checkout of the repository:

    python training/train.py --data-dir DATA --output-dir OUT
    accelerate launch --num_processes N training/train.py --data-dir DATA --output-dir OUT
    python -m training.train ...    (the same, as a module)

`carseg train ...` runs the same training with the same options. The trainer itself is a library in the installed
package, `carseg_hf.training`: `arguments.TrainingArguments` holds and validates the options, `argument_parser`
builds the command line from it, and `trainer.main` runs the sections of a run (setup, data, model, optimiser,
resume, epochs, validation and checkpoints, finish) from their own small modules. The rest of `training/` is scripts
too: `bundle_model.py`, `carvana_sample.py` and the synthetic-data generator `synthetic/`.
"""

from carseg_hf import training as carseg_training

if __name__ == "__main__":
    # `--help` and usage errors answer before torch is imported, under the name the script was started by.
    args = carseg_training.parse_args(prog="python -m training.train" if __package__ else "training/train.py")
    carseg_training.main(args)
