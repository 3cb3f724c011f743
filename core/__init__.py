"""Shared plumbing: settings, domain errors, artifact manifests, logging, offline mode."""
