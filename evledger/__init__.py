"""evledger's composition root: the command line, wiring the headless core (`ledger`) to the
measurement code (`runners`) and the terminal UI (`tui`). `ledger` never imports either."""
