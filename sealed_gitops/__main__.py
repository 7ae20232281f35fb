"""``python -m sealed_gitops`` runs the CLI, for environments without the console script."""

from sealed_gitops.cli.main import main

main()
