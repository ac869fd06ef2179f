"""What comes in: the user's settings, the segment lists, the label ontology, cookies and identities.

The lowest stage: it reads and checks everything the user names (any bytes give a value or one
error with file and line) and imports nothing from the stages above it.
"""
