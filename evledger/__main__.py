"""`python -m evledger` runs the evledger CLI."""

from evledger.cli import main

main()
