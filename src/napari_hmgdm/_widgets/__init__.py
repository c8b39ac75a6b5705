"""Dock widgets; each module holds one widget (or a part shared by them)."""
