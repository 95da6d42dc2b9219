"""MLLM backends: the contract rerankers call, a local transformers model, an OpenAI-compatible server."""
