"""Pure planning: object ids, inventory diff, change sets, redacted diffs."""
