"""How a deployment and its history read in a terminal: `ledgerflow deployments …`
prints them with these."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledgerflow.cli import output

if TYPE_CHECKING:
    from ledgerflow.services.deployments.state import Deployment, DeploymentChange


def print_deployment(dep: Deployment, as_json: bool) -> None:
    if as_json:
        output.print_json(dep.to_dict())
    else:
        show_state(dep)


def plan_text(dep: Deployment) -> str:
    if dep.plan is None or dep.step is None:
        return ""
    steps = ",".join(output.format_number(s.weight) for s in dep.plan.steps)
    return f"{dep.plan.candidate}:{steps} (step {dep.step + 1} of {len(dep.plan.steps)})"


def show_state(dep: Deployment) -> None:
    summary = {
        "name": dep.name,
        "status": dep.status,
        "baseline": dep.baseline,
        "description": dep.description,
        "sticky key": dep.key_header + (f" or body field {dep.key_field}" if dep.key_field else ""),
        "canary plan": plan_text(dep),
        "guardrails": "; ".join(guardrail_text(g.model_dump()) for g in dep.guardrails),
        "last action": dep.last_action,
        "last reason": dep.last_reason,
        "version": dep.version,
        "updated": output.format_time(dep.updated),
    }
    output.table(["field", "value"], list(summary.items()), no_wrap=["field"])
    shares = dep.shares()
    output.table(
        ["variant", "model", "version", "bundle", "weight", "share", "role"],
        [
            (
                v.name,
                v.model,
                v.version,
                v.bundle_id or "",
                "" if v.shadow else dep.weights.get(v.name, 0.0),
                "" if v.shadow else f"{100 * shares.get(v.name, 0.0):.1f}%",
                "shadow" if v.shadow else ("baseline" if v.name == dep.baseline else ""),
            )
            for v in dep.variants
        ],
        no_wrap=["variant"],
    )


def guardrail_text(g: dict[str, Any]) -> str:
    op = "<=" if g["bound"] == "max" else ">="
    limit = output.format_number(g["threshold"]) + ("x" if g["relative"] else "")
    return f"{g['metric']}{op}{limit}"


def change_text(change: DeploymentChange) -> str:
    """One line saying what an event changed (and why, when it says)."""
    s = change.summary
    parts: list[str] = []
    if change.type == "deployment.guardrail_tripped":
        g = s["guardrail"]
        parts.append(f"{s['variant']} broke {guardrail_text(g)}: observed "
                     f"{output.format_number(s['observed'])} > limit "
                     f"{output.format_number(s['limit'])} over {s['samples']} samples")  # fmt: skip
    elif isinstance(s.get("variant"), dict):
        parts.append(f"variant: {_variant_text(s['variant'])}")
    elif s.get("variant"):
        parts.append(f"variant: {s['variant']}")
    if s.get("variants"):
        parts.append("variants: " + ", ".join(_variant_text(v) for v in s["variants"]))
    for key in ("baseline", "to", "step", "alias"):
        if s.get(key) not in (None, ""):
            parts.append(f"{key}: {s[key]}")
    if s.get("plan") or change.type == "deployment.plan_set":
        parts.append("plan: " + (_plan_doc_text(s["plan"]) if s["plan"] else "cleared"))
    if s.get("weights"):
        split = " ".join(f"{k}={output.format_number(w)}" for k, w in s["weights"].items())
        parts.append(f"weights: {split}")
    if s.get("guardrails") or change.type == "deployment.guardrails_set":
        parts.append("guardrails: " + ("; ".join(map(guardrail_text, s["guardrails"])) or "none"))
    if s.get("reason"):
        parts.append(f"reason: {s['reason']}")
    return "; ".join(parts)


def _variant_text(v: dict[str, Any]) -> str:
    extra = ", shadow" if v.get("shadow") else ""
    extra += f", bundle {v['bundle_id']}" if v.get("bundle_id") else ""
    return f"{v['name']} ({v['model']}/{v['version']}{extra})"


def _plan_doc_text(plan: dict[str, Any]) -> str:
    steps = ",".join(output.format_number(st["weight"]) for st in plan["steps"])
    return f"{plan['candidate']}:{steps}"
