"""The package's version, in a module of its own so that backends and the command line can read it
without importing the top-level package (which imports `network`: an import circle)."""
__version__ = "0.1.0"
