"""Offline evaluations (retrieval quality: ``python -m eval.retrieval_eval``)."""
