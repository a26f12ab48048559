"""Pure after-sales rules: no I/O, standard library only. Every worker applies these."""
