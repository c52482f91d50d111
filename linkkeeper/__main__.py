"""`python -m linkkeeper` runs the CLI."""

from linkkeeper.cli import main

main()
