"""MLLM reranking: marked grids, prompts, output parsing, sliding windows and list fusion."""
