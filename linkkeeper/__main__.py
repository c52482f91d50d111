"""`python -m linkkeeper` runs the CLI."""

from linkkeeper.cli.app import main

main()
