"""llmring's built-in providers. Each module registers itself through the `llmring`
entry-point group, exactly as a third-party plugin would."""
