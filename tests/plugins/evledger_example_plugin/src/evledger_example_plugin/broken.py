"""A plug-in that fails on import: `evledger runners` must report it and list the others."""

raise ImportError("this example plug-in is broken on purpose")
