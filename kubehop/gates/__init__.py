"""Gates: checks that `pulumi up` runs between steps (`python -m kubehop gate NAME ...`).

Every gate polls with a bound, prints progress lines, and fails closed: an
unreachable endpoint or unreadable answer is a failure, never a pass.
"""
