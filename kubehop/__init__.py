"""kubehop: plain-Python core (config, catalog, hop planner, gates, offline plan).

Nothing in this package registers a Pulumi resource; `components/` does that.
"""
