"""`gridrank eval`: benchmark runs (first stage, fusion, reranking) and their reports."""
