"""Cross-cutting security tests: attack suite, fuzzing, hostile content, tenant isolation."""
