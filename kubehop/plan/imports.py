"""What a real `pulumi import` reads back, per resource type, and the inputs of
an import that it cannot read back.

The engine imports a resource by calling the provider's Read with only the id,
then diffs the program's inputs against what Read returned: before pulumi 3.174
any difference fails the import ("inputs to import do not match the existing
resource"); from 3.174 (pulumi/pulumi#19339) the engine imports and then
updates in the same run. Properties in `ignoreChanges` take the read-back value
(pulumi/pulumi `pkg/resource/deploy/step_generator.go`, processIgnoreChanges on
imports). So an adoption run must declare only what Read returns.
"""
from __future__ import annotations

from typing import Any

READ_BACK: dict[str, frozenset[str]] = {
    # pulumi-kubernetes provider/pkg/provider/helm_release.go Read: setReleaseAttributes
    # (name, namespace, chart, version, values = the release's user-supplied config),
    # importRelease (chart as `repo/chart` or the chart's name), setDefaults (timeout 300).
    "kubernetes:helm.sh/v3:Release": frozenset({"name", "namespace", "chart", "version", "values", "timeout"}),
    # terraform-provider-aws internal/service/autoscaling/group.go resourceGroupRead: every
    # attribute it sets from DescribeAutoScalingGroups. Not among them: instance_refresh
    # (never read), force_delete*, wait_for_*, min_elb_capacity, initial_lifecycle_hook,
    # ignore_failed_scaling_activities (schema-only settings).
    "aws:autoscaling/group:Group": frozenset({
        "name", "minSize", "maxSize", "desiredCapacity", "desiredCapacityType", "vpcZoneIdentifiers",
        "availabilityZones", "launchTemplate", "launchConfiguration", "mixedInstancesPolicy", "tags",
        "terminationPolicies", "enabledMetrics", "metricsGranularity", "healthCheckGracePeriod",
        "healthCheckType", "capacityRebalance", "maxInstanceLifetime", "defaultCooldown",
        "defaultInstanceWarmup", "suspendedProcesses", "protectFromScaleIn", "serviceLinkedRoleArn",
        "loadBalancers", "targetGroupArns", "trafficSources", "placementGroup", "warmPool",
        "instanceMaintenancePolicy", "context", "predictedCapacity"}),
}


# Inputs the SDK always sends that the provider's Check drops before any diff:
# pulumi-kubernetes helm_release.go Check re-encodes the inputs from its Release
# struct (`news = resource.NewPropertyMap(newRelease)`), which has no `compat`
# field (the schema's constant "true" every SDK sets, provider/pkg/gen/overlays.go).
CHECK_DROPS: dict[str, frozenset[str]] = {
    "kubernetes:helm.sh/v3:Release": frozenset({"compat"}),
}


def unreadable_inputs(resource_type: str, inputs: dict[str, Any], ignore_changes: list[str]) -> list[str]:
    """Declared inputs of an import that its Read does not return (and that are
    not ignored): each would fail the import or rewrite the resource."""
    known = READ_BACK.get(resource_type)
    if known is None:
        return [f"(no import read-back is modelled for {resource_type})"]
    ignored = {path.split(".")[0].split("[")[0] for path in ignore_changes}
    dropped = CHECK_DROPS.get(resource_type, frozenset())
    return sorted(k for k in inputs if k not in known and k not in ignored and k not in dropped)
