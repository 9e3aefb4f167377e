"""Plugins: the hook specifications, the registry that loads them, an entry's choices,
the contract each kind of component must meet, and the conformance checks built on it."""
