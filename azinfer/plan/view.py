"""Text and HTML forms of a plan, rendered from its JSON form (never from internals).

Both take the dict of :meth:`azinfer.plan.Plan.to_json`, so a plan saved as
JSON (``azinfer plan --json``) renders the same as a live one.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

__all__ = ["format_text", "format_html"]

_SYMBOLS = {"create": "+", "reuse": "=", "update": "~"}
_LEGEND = {"create": "create", "reuse": "reuse (referenced as existing, never written)", "update": "update"}
_VERBS = {"create": "will be created", "reuse": "will be reused", "update": "will be updated"}
_COLORS = {"create": "32", "reuse": "36", "update": "33", "problem": "31", "warning": "33", "bold": "1", "dim": "2"}
_ORIGINS = {"azinfer": "azinfer's server (/health, /ready, API key)", "user": "your command, as written"}


def _paint(text: str, style: str, color: bool) -> str:
    return f"\x1b[{_COLORS[style]}m{text}\x1b[0m" if color else text


def _summary_line(summary: Mapping[str, int]) -> str:
    return f"{summary['create']} to create, {summary['reuse']} to reuse, {summary['update']} to update."


def _start_reason(plan: Mapping[str, Any], color: bool) -> list[str]:
    """Why this start command, unless a warning below says it already."""
    reason = plan["start"]["reason"]
    if any(w["message"] == reason for w in plan["warnings"]):
        return []
    return [_paint(f"      because {reason}", "dim", color)]


def _money(amount: float, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def _fit_lines(fit: Mapping[str, Any] | None) -> list[str]:
    """The fit verdict, and what it is made of."""
    if fit is None:
        return []
    lines = [f"  fit: {fit['summary']}"]
    if fit["verdict"] != "unknown":
        lines.append(f"      {fit['model']} ({fit['modelSource']}): weights {fit['weightsGiB']} GiB + KV cache "
                     f"{fit['kvCachePerSequenceGiB']} GiB per {fit['contextLength']}-token sequence + runtime "
                     f"{fit['runtimeGiB']} GiB; sizes from {fit['sizesFrom']}")
    return lines


def _cold_start_lines(plan: Mapping[str, Any]) -> list[str]:
    """A serverless replica's start, when no warning says it already."""
    cold = plan.get("coldStart")
    if not cold or any(cold["summary"] in w["message"] for w in plan["warnings"]):
        return []
    return [f"  cold start: {cold['summary']} (estimate)"]


def _scale_lines(plan: Mapping[str, Any], color: bool) -> list[str]:
    """The HTTP scale rule and where its threshold came from (none for the user's own start)."""
    scale = plan["gpu"].get("httpScale")
    if scale is None:
        return []
    return [_paint(f"      scale: a replica per {scale['concurrentRequests']} concurrent requests, up to "
                   f"{plan['gpu']['maxReplicas']}; from {scale['source']}", "dim", color)]


def _cost_lines(plan: Mapping[str, Any]) -> list[str]:
    """Per replica-hour, idle and busy, a month, what scale-to-zero saves, the other profiles, the prices' origin.

    A plan saved before azinfer estimated costs has no ``cost`` key: nothing is shown.
    """
    if "cost" not in plan:
        return []
    cost = plan["cost"]
    if cost is None:
        return ["  cost: unknown (the price table has no figure for this GPU profile)"]
    cur = cost["currency"]
    parts = " + ".join(f"{line['quantity']:g} {line['meter']} {_money(line['perHour'], cur)}" for line in cost["lines"])
    prices = cost["prices"]
    saves = (f"scaling to zero saves {_money(cost['scaleToZeroSaves'], cur)} a month against one warm replica"
             if cost["scalesToZero"] else
             f"minReplicas 0 would save {_money(cost['scaleToZeroSaves'], cur)} a month")
    others = "; ".join(f"{o['profile']} {_money(o['replicaHour'], cur)}/h, {_money(o['monthly'], cur)}/month"
                       for o in cost["others"])
    fixed = f" + management {_money(cost['fixedHour'], cur)}/h while a node runs" if cost["fixedHour"] else ""
    return [
        f"  cost ({cost['profile']}): {_money(cost['replicaHour'], cur)} per replica-hour ({parts}){fixed}",
        f"      idle ({cost['minReplicas']} replicas) {_money(cost['idleHour'], cur)}/h, busy "
        f"({cost['maxReplicas']}) {_money(cost['busyHour'], cur)}/h; about {_money(cost['monthly'], cur)} a month "
        f"with {cost['busyHours']:g} busy hours ({cost['busyHoursSource']}; --busy-hours); {saves}",
        f"      others: {others}" if others else "      others: none priced",
        f"      prices: {cur}, {prices['region']}, {prices['date']}"
        + (", estimates" if prices["estimate"] else "") + f" ({prices['source']})",
        *([f"      ! the prices are {prices['ageDays']} days old (over {prices['staleAfterDays']}): run 'azinfer prices --refresh' "
           "and plan with --prices FILE"] if prices["stale"] else []),
    ]


def format_text(plan: Mapping[str, Any], *, color: bool = False) -> str:
    """A plan as a person reads it: legend, one block per resource, problems, summary line."""
    location = plan["location"]["value"] or "the resource group's"
    lines = [
        _paint(f"azinfer plan: resource group {plan['resourceGroup']['value']!r}", "bold", color),
        f"  subscription {plan['subscriptionId']['value']} ({plan['subscriptionId']['detail']})",
        f"  location {location} ({plan['location']['detail']})",
        f"  GPU {plan['gpu']['profileType']} as workload profile {plan['gpu']['profileName']!r}"
        + (" (added to the environment)" if plan["gpu"]["addedToEnvironment"] else "")
        + f", replicas {plan['gpu']['minReplicas']} to {plan['gpu']['maxReplicas']}; "
        f"authentication: {plan['authentication']}",
        _paint(f"      GPU type from {plan['gpu']['profileTypeSource']['source']}: "
               f"{plan['gpu']['profileTypeSource']['detail']}", "dim", color),
        *_scale_lines(plan, color),
        f"  start: {_ORIGINS[plan['start']['origin']]}",
        *_start_reason(plan, color),
        *_fit_lines(plan.get("fit")),
        *_cost_lines(plan),
        *_cold_start_lines(plan),
        "",
        "Resource actions are indicated with the following symbols:",
    ]
    used = [action for action in _SYMBOLS if any(r["action"] == action for r in plan["resources"])]
    lines += [f"  {_paint(_SYMBOLS[a], a, color)} {_LEGEND[a]}" for a in used]
    lines.append("")
    for resource in plan["resources"]:
        action = resource["action"]
        head = f"{_SYMBOLS[action]} {resource['title']} {resource['name']!r} {_VERBS[action]}"
        lines.append("  " + _paint(head, action, color))
        lines.append(f"      because {resource['reason']}")
        source = resource["nameSource"]
        lines.append(_paint(f"      name from {source['source']}: {source['detail']}", "dim", color))
        if resource.get("keeps"):
            lines.append(f"      keeps as it is: {', '.join(resource['keeps'])}")
        lines.append("")
    if plan["problems"]:
        lines.append(_paint(f"Problems ({len(plan['problems'])}):", "problem", color))
        for problem in plan["problems"]:
            lines.append("  " + _paint(f"x {problem['resource']}: {problem['message']}", "problem", color))
        lines.append("")
    if plan["warnings"]:
        lines.append(_paint(f"Warnings ({len(plan['warnings'])}):", "warning", color))
        for warning in plan["warnings"]:
            lines.append("  " + _paint(f"! {warning['message']}", "warning", color))
        lines.append("")
    lines.append(_paint("Plan: ", "bold", color) + _summary_line(plan["summary"]))
    if plan["blocked"]:
        lines.append(_paint("The plan is blocked: fix the problems above and plan again.", "problem", color))
    return "\n".join(lines) + "\n"


def format_html(plan: Mapping[str, Any]) -> str:
    """A plan as an HTML table, for notebooks (``Plan._repr_html_``)."""
    esc = html.escape
    rows = []
    for r in plan["resources"]:
        rows.append(
            "<tr>"
            f"<td><code>{esc(_SYMBOLS[r['action']])}</code> {esc(r['action'])}</td>"
            f"<td>{esc(r['title'])}</td><td><code>{esc(r['name'])}</code></td>"
            f"<td>{esc(r['reason'])}</td>"
            f"<td>{esc(r['nameSource']['source'])}: {esc(r['nameSource']['detail'])}</td>"
            "</tr>"
        )
    problems = "".join(f"<li><b>{esc(p['resource'])}</b>: {esc(p['message'])}</li>" for p in plan["problems"])
    warnings = "".join(f"<li>{esc(w['message'])}</li>" for w in plan["warnings"])
    gpu, start = plan["gpu"], plan["start"]
    location = plan["location"]["value"] or "the resource group's location"
    return (
        '<div class="azinfer-plan">'
        f"<p><b>azinfer plan</b>: resource group <code>{esc(plan['resourceGroup']['value'])}</code>, "
        f"subscription <code>{esc(plan['subscriptionId']['value'])}</code>, location {esc(location)}</p>"
        f"<p>GPU <code>{esc(gpu['profileType'])}</code> as profile <code>{esc(gpu['profileName'])}</code> "
        f"({esc(gpu['profileTypeSource']['detail'])}), replicas {gpu['minReplicas']} to {gpu['maxReplicas']}; "
        f"start: {esc(_ORIGINS[start['origin']])} ({esc(start['reason'])})</p>"
        + "".join(f"<p>{esc(line.strip())}</p>" for line in _scale_lines(plan, False))
        + "".join(f"<p>{esc(line.strip())}</p>" for line in (*_fit_lines(plan.get("fit")), *_cost_lines(plan), *_cold_start_lines(plan)))
        + "<table><thead><tr><th>action</th><th>resource</th><th>name</th><th>reason</th><th>name from</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        + (f'<p style="color:#b00"><b>Problems</b></p><ul>{problems}</ul>' if problems else "")
        + (f'<p style="color:#a60"><b>Warnings</b></p><ul>{warnings}</ul>' if warnings else "")
        + f"<p><b>Plan:</b> {esc(_summary_line(plan['summary']))}"
        + (" <b style=\"color:#b00\">Blocked.</b>" if plan["blocked"] else "")
        + "</p></div>"
    )
