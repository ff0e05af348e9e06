"""One module per `ft` command."""
