"""Offline evaluations (retrieval quality: ``python -m eval.retrieval_eval``; the agent's rules on tool calls:
``python -m eval.rules_eval``)."""
