"""How identities are paced: the run's book of whose turn it is, when, and what a 429 teaches.

``policy`` holds the rule an identity's pace follows; ``book`` the book every worker shares;
``learned`` what runs learn of each identity (identities.json) and the book a run builds from it;
``dask_book`` keeps the same book on a Dask scheduler.
"""
