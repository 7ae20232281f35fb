"""The keyring: key providers (local files, Kubernetes Secrets, Vault) and rotation."""
