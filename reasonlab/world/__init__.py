"""The tiny world: a tokenizer, a synthetic corpus and a small causal LM pretrained from scratch,
standing in for a base LLM when no model hub is reachable."""
