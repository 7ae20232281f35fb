"""The command-line face: click commands, rich output, exit codes."""
