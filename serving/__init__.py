"""Serving: component runtime (background loading, readiness), REST API, Gradio UI, background server helper."""
