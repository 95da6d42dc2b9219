"""Everything below the CLI and the web app, one room per job: store/ (the index), query/ (search),
models/ (encoders and profiles), media/ (decoding), rerank/ (MLLM reranking and fusion), evaluation/
and datasets/ (benchmarks). errors, settings and vectors are shared by every room."""
