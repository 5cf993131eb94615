"""Stage 5, retrieval: encoding (`encode.py`), Faiss dense indexes and search over the
embeddings (`dense.py`), the BM25 baseline on Anserini/Lucene (`bm25.py`), both searches'
shared driver (`search.py`), TREC run files (`trec.py`) and relevant-rank files (`ranks.py`).
Importing this package loads nothing heavy and starts no JVM; the functions that need one
call `xlir.common.java_env.configure_java` first."""
