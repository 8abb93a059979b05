"""GGUF export, LoRA merging and llama.cpp quantization, without llama.cpp's convert script."""
