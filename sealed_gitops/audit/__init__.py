"""Git history turned into per-key change records, without any plaintext."""
