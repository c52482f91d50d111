"""linkkeeper: keeps a static archive's links honest.

Pipeline (see README): scan -> check -> record -> capture -> report/export.
"""

__version__ = "0.1.0"
