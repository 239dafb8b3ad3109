"""Providers: one small class per resource type, each keeping the contract in base.py."""
