"""Query-time: encoders, vector index, search, fusion, rerankers, metrics."""
