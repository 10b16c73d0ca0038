"""omniman, an order kernel for Django. Its version is read from here by the build
(pyproject.toml) and the docs."""

__version__ = "0.1.0"
