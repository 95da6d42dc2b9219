"""Query time: what a user typed becomes a request, a vector, a first-stage list, fused or reranked results."""
