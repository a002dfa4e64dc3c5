"""Training of carseg models with Accelerate and HF Datasets (`training/train.py`)."""
