"""SOPS documents, byte-compatible with the sops 3.x binary."""
