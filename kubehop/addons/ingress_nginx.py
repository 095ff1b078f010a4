"""ingress-nginx (kubernetes/ingress-nginx charts/ingress-nginx).

Compatibility: the project's supported-versions table (README): 4.11.x
(v1.11) 1.26-1.30, 4.12.x 1.28-1.32, 4.13.x 1.29-1.33, 4.14.x 1.30-1.34,
4.15.x 1.31-1.35. v1.12.0 (chart 4.12.0) turns on annotation validation and
strict path types and removes global rate limiting and Lua plugins
(controller-1.12.0 changelog): crossing it needs the `ingress-1.12` preflight.
Names: `helm create` fullname, controller `<fullname>-controller`
(templates/_helpers.tpl at controller-v1.11.8).
"""
from kubehop.addons.base import AddonGate, AddonSpec, Breaking, ChartPin, GateFlag, Line, fullname
from kubehop.gates.http_check import look, parse_url_check
from kubehop.gates.kube import Kubectl, KubectlError

PINS = {"1.26": ("4.11.8", "v1.11.8"), "1.27": ("4.11.8", "v1.11.8"), "1.28": ("4.12.8", "v1.12.8"),
        "1.29": ("4.13.9", "v1.13.9"), "1.30": ("4.14.5", "v1.14.5"), "1.31": ("4.15.1", "v1.15.1"),
        "1.32": ("4.15.1", "v1.15.1")}
LINES = (Line("4.11.0", "4.11.8", ("1.26", "1.30")), Line("4.12.0", "4.12.8", ("1.28", "1.32")),
         Line("4.13.0", "4.13.9", ("1.29", "1.33")), Line("4.14.0", "4.14.5", ("1.30", "1.34")),
         Line("4.15.0", "4.15.1", ("1.31", "1.35")))


def controller(release: str, values: dict) -> str:
    name = ((values.get("controller") or {}).get("name")) or "controller"
    return f"{fullname(release, 'ingress-nginx', values)}-{name}"


def _check(cfg, addon, release, values, pin):
    ns = addon.namespace or "ingress-nginx"
    args = ["--namespace", ns, "--workload", f"deployment/{controller(release, values)}",
            "--service", controller(release, values)]
    for url in addon.check_urls:
        args += ["--url", url]
    return args



# --- the addon-check gate's part (python -m kubehop gate addon-check --addon ...) ----------


def lb_address(svc: dict) -> str | None:
    for entry in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        if isinstance(entry, dict) and (entry.get("hostname") or entry.get("ip")):
            return entry.get("hostname") or entry.get("ip")
    return None


def check_ingress_nginx(k: Kubectl, args, pods: list[dict]) -> list[str]:
    label = f"service {args.namespace}/{args.service}"
    try:
        svc = k.get("services", args.service, kind="Service", namespace=args.namespace)
    except KubectlError as exc:
        return [f"{label}: {exc}"]
    kind = (svc.get("spec") or {}).get("type")
    if kind != "LoadBalancer":
        return [f"{label}: type {kind}, not LoadBalancer"]
    if not lb_address(svc):
        return [f"{label}: LoadBalancer has no status.loadBalancer.ingress address"]
    if args.url:
        verdict = look(args.url, timeout=10, verify=True, follow_redirects=False)
        if not verdict.ok:
            return [f"ingress URLs: {verdict.detail}"]
    return []


GATE = AddonGate(
    check=check_ingress_nginx, summary="; controller LoadBalancer has an address",
    flags=(GateFlag("--service", "ingress-nginx-controller", {"help": "controller Service name (default ingress-nginx-controller)"}),
           GateFlag("--url", [], {"action": "append", "type": parse_url_check, "metavar": "NAME=URL=STATUS[,STATUS]",
                                  "help": "a URL served through the ingress (Grafana, Loki, Jumpserver) and the status it must answer; repeatable"})),
)


SPEC = AddonSpec(
    name="ingress-nginx", chart="ingress-nginx", repo="https://kubernetes.github.io/ingress-nginx",
    namespace="ingress-nginx", release="ingress-nginx", image_repository=None,
    per_minor={m: ChartPin(c, t, (c.rsplit(".", 1)[0] + ".0", c)) for m, (c, t) in PINS.items()},
    lines=LINES,
    source="kubernetes/ingress-nginx supported versions table; retired 2025-11-11 (kubernetes.io blog)",
    depends_on=("aws-cloud-controller-manager",),
    risk="high", impact="The entry point for business traffic; routes may blip, wrong values give 502/503.",
    workloads=lambda release, values: [f"deployment/{controller(release, values)}"],
    # No service annotations: a Classic ELB Service given `aws-load-balancer-type: nlb`
    # gets a new NLB with a new hostname; the load balancer type comes from config values.
    values=lambda cfg, image_tag: {},
    check=_check,
    breaking=(Breaking("4.12.0", "ingress-1.12",
                       "v1.12 validates annotations (snippets refused), enforces strict path types, drops global rate limits and Lua plugins"),),
    warning="ingress-nginx is retired upstream (kubernetes.io, 2025-11-11): no releases or security fixes after March 2026; plan a move to another controller",
    gate=GATE,
)
