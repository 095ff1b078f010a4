"""The group's instance refresh, as the rollout gate watches and steers it.

Shapes and statuses are the AWS Auto Scaling API reference's
(DescribeInstanceRefreshes / InstanceRefresh.Status: Pending, InProgress,
Successful, Failed, Cancelling, Cancelled, RollbackInProgress, RollbackFailed,
RollbackSuccessful, Baking; StartInstanceRefresh; CancelInstanceRefresh, which
raises ActiveInstanceRefreshNotFound when none is active). The rules:
  - a refresh this gate started or saw active that ends Failed, Cancelled or
    rolled back fails the gate at once (no waiting for the timeout);
  - one that ended before this gate looked (a previous run's, or cancelled by
    hand) is followed by a new refresh, so a re-run after a cancel rolls again;
  - an active refresh started for an older launch template version (its
    DesiredConfiguration names another version, or it started before the wanted
    version was created) is cancelled and replaced by one for the group's
    current template;
  - when the gate fails, the active refresh is cancelled, so a bad image
    replaces no more nodes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

ACTIVE = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
ENDED_BADLY = frozenset({"Failed", "Cancelled", "RollbackFailed", "RollbackSuccessful"})
STEERABLE = frozenset({"Pending", "InProgress", "Baking"})  # CancelInstanceRefresh applies


@dataclass(frozen=True)
class Preferences:
    """The refresh preferences the pool declares (components/node_pool.py), in the API's names."""

    min_healthy: int
    max_healthy: int | None
    warmup: int

    def api(self) -> dict:
        prefs = {"MinHealthyPercentage": self.min_healthy, "InstanceWarmup": self.warmup, "SkipMatching": True}
        if self.max_healthy is not None:
            prefs["MaxHealthyPercentage"] = self.max_healthy
        return prefs


def describe(refresh: dict) -> str:
    pct = refresh.get("PercentageComplete")
    reason = refresh.get("StatusReason")
    return (f"refresh {refresh['InstanceRefreshId']} {refresh['Status']}" + (f" {pct}%" if pct is not None else "")
            + (f" ({reason})" if reason else ""))


def for_older_template(refresh: dict, want_version: int | None, version_created: datetime | None) -> bool:
    """True when the refresh rolls toward another launch template version than the wanted one."""
    desired = ((refresh.get("DesiredConfiguration") or {}).get("LaunchTemplate") or {}).get("Version")
    if desired and want_version is not None and desired not in ("$Latest", "$Default"):
        return str(desired) != str(want_version)
    start = refresh.get("StartTime")
    return bool(start and version_created and start < version_created)


@dataclass
class RefreshWatch:
    """One gate run's view of the group's refreshes."""

    client: object
    asg: str
    preferences: Preferences
    want_version: int | None
    watched: set[str] = field(default_factory=set)
    """Refreshes this run started or saw active: their failure is final."""
    replaced: set[str] = field(default_factory=set)
    """Refreshes this run cancelled for rolling toward an older template."""

    def latest(self) -> dict | None:
        """The newest refresh (one not started yet counts as newest)."""
        refreshes = self.client.describe_instance_refreshes(AutoScalingGroupName=self.asg, MaxRecords=10)["InstanceRefreshes"]
        unstarted = [r for r in refreshes if not r.get("StartTime")]
        return unstarted[0] if unstarted else max(refreshes, key=lambda r: r["StartTime"], default=None)

    def steer(self, version_created: datetime | None) -> tuple[str, bool]:
        """Look at the latest refresh, start or cancel one if needed: (what happened, final failure?)."""
        refresh = self.latest()
        rid = refresh["InstanceRefreshId"] if refresh is not None else None
        if refresh is not None and refresh["Status"] in ACTIVE:
            if rid in self.replaced:
                return f"{describe(refresh)}: waiting for the cancel before a new refresh starts", False
            if refresh["Status"] in STEERABLE and for_older_template(refresh, self.want_version, version_created):
                self.client.cancel_instance_refresh(AutoScalingGroupName=self.asg)
                self.replaced.add(rid)
                return f"{describe(refresh)} was started for an older launch template version: cancelled, a new one starts next", False
            self.watched.add(rid)
            return describe(refresh), False
        if rid in self.watched and refresh["Status"] in ENDED_BADLY:
            return f"{describe(refresh)}: the rollout stopped", True
        started = self.client.start_instance_refresh(
            AutoScalingGroupName=self.asg, Strategy="Rolling", Preferences=self.preferences.api())["InstanceRefreshId"]
        self.watched.add(started)
        before = f" after {describe(refresh)}" if refresh is not None else ""
        return f"started refresh {started}{before}", False

    def cancel(self) -> str:
        """Cancel the active refresh, if any: what was done, for the failure message."""
        refresh = self.latest()
        if refresh is None or refresh["Status"] not in STEERABLE:
            return "no active refresh to cancel"
        self.client.cancel_instance_refresh(AutoScalingGroupName=self.asg)
        return f"{describe(refresh)} cancelled"
