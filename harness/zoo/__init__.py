"""The adapter zoo: manifests that map tasks to verified LoRA adapters."""
