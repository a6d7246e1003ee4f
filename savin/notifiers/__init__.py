"""One module per provider, all sharing :mod:`savin.notifiers.base`."""
