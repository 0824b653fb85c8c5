"""One module per resource; routes translate HTTP to service calls and back, and hold no business logic."""
