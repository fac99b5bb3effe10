"""CLI command modules; each defines register(subparsers). Discovered by gpusnn.cli."""
