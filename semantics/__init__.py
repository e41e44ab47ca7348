"""tinyattn.semantics: what the IR means (numpy reference, interpreter, cost)."""
