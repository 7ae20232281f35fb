"""The Kubernetes API emulator (a test and sandbox tool; never on the operator's code paths)."""
