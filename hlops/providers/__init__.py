"""Providers: one package per backend hlops provisions (``hlops/providers/<name>/``).

A provider implements :class:`hlops.provider.Provider`; the engine finds it by name through
the registry in :mod:`hlops.provider` and never imports a package below this one.
"""
