"""A character-level GPT on Tiny Shakespeare with nested feed-forward widths and heads (#19)."""
