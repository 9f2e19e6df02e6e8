"""``python -m vaekit`` (and ``torchrun -m vaekit``) runs the command-line interface."""

from .cli import main

main()
