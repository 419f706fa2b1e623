"""The ganforge command line: one thin module per verb."""
