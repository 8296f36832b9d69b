"""`python -m ledger` runs the evledger CLI."""

from ledger.cli import main

main()
