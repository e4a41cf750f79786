"""Ownership transfer: the owner hands the team (and its billing) to another admin."""
