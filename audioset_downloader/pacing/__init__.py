"""How identities are paced: the run's book of whose turn it is, when, and what a 429 teaches.

``book`` holds the pacing policies and the book every worker shares; ``dask_book`` keeps the
same book on a Dask scheduler.
"""
