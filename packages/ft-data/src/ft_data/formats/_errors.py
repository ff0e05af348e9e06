"""The error a converter raises for a bad row; the loader adds file and row number."""


class RowError(ValueError):
    """A row that does not fit its format; the message names the key."""
