"""`forewarn bench ...` implementations, one module per area."""
