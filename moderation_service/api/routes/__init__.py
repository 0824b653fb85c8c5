"""One module per resource; routes translate HTTP to the Pipeline and hold no business logic."""
