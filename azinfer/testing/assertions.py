"""One-line assertions on plans; a failure says what differs and shows the plan as ``azinfer plan`` prints it."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from enum import Enum
from typing import Any

from azinfer._arguments import check_mapping, check_member, check_members, check_type
from azinfer.errors import ArgumentError
from azinfer.plan import Action, Plan, ProblemCode, WarningCode
from azinfer.resources import ResourceKind

__all__ = ["assert_plan"]

_FN = "assert_plan"


def assert_plan(
    plan: Plan,
    *,
    creates: Collection[ResourceKind] | None = None,
    reuses: Collection[ResourceKind] | None = None,
    updates: Collection[ResourceKind] | None = None,
    actions: Mapping[ResourceKind, Action | Collection[Action]] | None = None,
    blocked_by: Collection[ProblemCode] | None = None,
    warns: Collection[WarningCode] | None = None,
) -> None:
    """Assert what ``plan`` does; an argument left out (``None``) is not checked.

    ``creates``, ``reuses`` and ``updates`` are the *exact* kinds with that
    action; ``actions`` checks only the kinds it names, each against one
    action or a set of allowed ones; ``blocked_by`` is the exact set of
    problem codes (``()``: not blocked) and ``warns`` the exact set of
    warning codes (``()``: no warning). Kinds and codes may be given as
    members or as their values (``"containerApp"``).

    For example::

        assert_plan(plan, creates={ResourceKind.CONTAINER_APP}, blocked_by=())
        assert_plan(plan, actions={ResourceKind.STORAGE_ACCOUNT: Action.REUSE})

    :param plan: the plan to check.
    :param creates: the kinds the plan creates.
    :param reuses: the kinds the plan reuses (never writes).
    :param updates: the kinds the plan updates.
    :param actions: the action (or allowed actions) of some kinds.
    :param blocked_by: the codes of the problems that block the plan.
    :param warns: the codes of the plan's warnings.
    :raises AssertionError: when the plan differs; the message lists every
        difference, then the plan's text form.
    :raises ArgumentError: when an argument has the wrong type or value, or
        one kind is expected with two actions.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    check_type(_FN, "plan", plan, Plan, "a Plan (azinfer.plan_project or azinfer.make_plan)")
    expected_kinds = {
        Action.CREATE: _members("creates", creates, ResourceKind),
        Action.REUSE: _members("reuses", reuses, ResourceKind),
        Action.UPDATE: _members("updates", updates, ResourceKind),
    }
    allowed = _allowed_actions(actions)
    _refuse_contradictions(expected_kinds)
    problems = _members("blocked_by", blocked_by, ProblemCode)
    warnings = _members("warns", warns, WarningCode)

    differences = []
    arguments = {Action.CREATE: "creates", Action.REUSE: "reuses", Action.UPDATE: "updates"}
    for action, kinds in expected_kinds.items():
        if kinds is None:
            continue
        actual = frozenset(change.kind for change in plan.changes if change.action is action)
        differences += _compare(arguments[action], kinds, actual, ResourceKind)
    for kind, wanted in allowed.items():
        change = plan.change(kind)
        if change.action not in wanted:
            words = " or ".join(a.value for a in Action if a in wanted)
            differences.append(
                f"actions[{kind.name}]: expected {words}, got {change.action.value} "
                f"({kind.label} {change.name.value!r}: {change.reason.value})"
            )
    if problems is not None:
        differences += _compare("blocked_by", problems, frozenset(p.code for p in plan.problems), ProblemCode)
    if warnings is not None:
        differences += _compare("warns", warnings, frozenset(w.code for w in plan.warnings), WarningCode)
    if differences:
        lines = ["the plan differs from what the test expects:", *(f"- {d}" for d in differences), "", "the plan:"]
        raise AssertionError("\n".join(lines) + "\n" + plan.to_text())


def _members(argument: str, value: Any, enum: type[Enum]) -> frozenset[Any] | None:
    return None if value is None else check_members(_FN, argument, value, enum)


def _allowed_actions(value: Any) -> dict[ResourceKind, frozenset[Action]]:
    if value is None:
        return {}
    allowed = {}
    for key, item in check_mapping(_FN, "actions", value).items():
        kind = check_member(_FN, "actions key", key, ResourceKind)
        if isinstance(item, (Action, str)):
            allowed[kind] = frozenset({check_member(_FN, f"actions[{kind.name}]", item, Action)})
        else:
            allowed[kind] = check_members(_FN, f"actions[{kind.name}]", item, Action)
    return allowed


def _refuse_contradictions(expected: Mapping[Action, frozenset[ResourceKind] | None]) -> None:
    seen: dict[ResourceKind, Action] = {}
    for action, given in expected.items():
        kinds = given or frozenset()
        for kind in kinds:
            if kind in seen:
                raise ArgumentError(
                    _FN, f"{action.value}s", f"kinds no other action names ({kind.name} is also in {seen[kind].value}s)",
                    sorted(k.name for k in kinds),
                )
            seen[kind] = action


def _compare(argument: str, expected: frozenset[Any], actual: frozenset[Any], enum: type[Enum]) -> list[str]:
    if expected == actual:
        return []
    line = f"{argument}: expected {_show(expected, enum)}, got {_show(actual, enum)}"
    if expected and actual:
        parts = [f"missing {_show(expected - actual, enum)}"] if expected - actual else []
        parts += [f"unexpected {_show(actual - expected, enum)}"] if actual - expected else []
        line += f" ({'; '.join(parts)})"
    return [line]


def _show(members: Iterable[Any], enum: type[Enum]) -> str:
    ordered = [m.name for m in enum if m in set(members)]
    return "{" + ", ".join(ordered) + "}" if ordered else "nothing"
