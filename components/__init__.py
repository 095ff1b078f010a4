"""Pulumi components: one ComponentResource per concern of a hop."""
