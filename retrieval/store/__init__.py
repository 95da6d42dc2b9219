"""Where an index lives: the SQLite catalog, vector ids, FAISS indexes, their atomic commit and rebuilds."""
