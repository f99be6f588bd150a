"""Hand-written Triton solutions: `<stem>.py` defines the `ModelNew` that solves `ops/<stem>`.

Each module is self-contained (it is shown to the LLM as a few-shot example and verified as a
candidate): kernel, launching wrapper, then `ModelNew`, with explicit GPU and CPU-interpreter
configurations rather than autotuning, so verification time is predictable.
"""
