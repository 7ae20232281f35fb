"""Test and sandbox tools: the Kubernetes API emulator and fixtures for the real components."""
