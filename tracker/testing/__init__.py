"""Test support for tracker: simulated storage hosts and their topologies."""
