"""Git sources: fetch, ref selection and commit signature verification."""
