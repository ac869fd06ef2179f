"""Download AudioSet's YouTube windows as audio clips, with their labels."""

__version__ = "0.1.0"
