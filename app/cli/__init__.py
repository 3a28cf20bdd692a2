"""Command line: the composition root that wires the layers together."""
