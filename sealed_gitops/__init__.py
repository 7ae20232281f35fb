"""sealed-gitops: GitOps for Kubernetes in which every secret lives encrypted in Git."""

__version__ = "0.1.0"
