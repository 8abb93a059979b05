"""The shared artefacts every feature reads, on the low floor.

The embedded model, parameter counts, the adapter zoo's manifest, a GGUF's header, and a LoRA
folded into its backbone: models, training, quantization, evaluation and the zoo all use
them without importing one another; nothing here imports a feature folder.
"""
