"""One module per Helm addon; SPECS lists them in dependency order.

Adding an addon is adding a module here (and its name to MODULES).
"""
from kubehop.addons import aws_cloud_controller_manager, calico, cluster_autoscaler, ingress_nginx, kube_state_metrics
from kubehop.addons.base import AddonSpec

MODULES = (calico, aws_cloud_controller_manager, cluster_autoscaler, kube_state_metrics, ingress_nginx)
SPECS: dict[str, AddonSpec] = {m.SPEC.name: m.SPEC for m in MODULES}
