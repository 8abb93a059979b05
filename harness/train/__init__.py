"""LoRA / QLoRA training, sweeps and adapter merging."""
