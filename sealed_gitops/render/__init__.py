"""Rendering: safe YAML loading with limits, kustomize, and finding the encrypted documents."""
