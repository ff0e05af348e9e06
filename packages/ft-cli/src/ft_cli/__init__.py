"""The `ft` command line; see `ft --help`."""

__all__: list[str] = []
