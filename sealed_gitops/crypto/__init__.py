"""Pure cryptographic formats: bytes in, bytes out. No I/O, no subprocess."""
