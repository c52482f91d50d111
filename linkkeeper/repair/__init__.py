"""Repairing dead links: choosing an archived copy for each and rewriting the posts (`fix`).

Layer: beside audit/report. It reads the history and our captures and may ask
external web archives; nothing but the command line imports it.
"""
