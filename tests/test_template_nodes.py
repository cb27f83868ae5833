"""Every expression node of the template model prints itself in ARM JSON and in Bicep.

A node is one class (:class:`azinfer.templates.model.Node`) with both printings:
one without them cannot be made, and one without a case here fails the first test.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from azinfer.resources import ResourceKind
from azinfer.templates import model
from azinfer.templates.arm import arm_template
from azinfer.templates.bicep import bicep_template
from azinfer.templates.model import (
    Call,
    Cond,
    Equals,
    Index,
    Interp,
    ListKeys,
    Member,
    Node,
    Output,
    Param,
    Parameter,
    Properties,
    ResourceId,
    ResourceName,
    Template,
    Var,
    Variable,
)

STORAGE = ResourceKind.STORAGE_ACCOUNT.spec

# Node class -> (an instance, its ARM expression, its Bicep expression).
CASES: dict[type[Node], tuple[Node, str, str]] = {
    Param: (Param("p"), "parameters('p')", "p"),
    Var: (Var("v"), "variables('v')", "v"),
    Call: (Call("join", (["a", 1], ",")), "join(createArray('a', 1), ',')", "join([\n  'a'\n  1\n], ',')"),
    Member: (Member(Cond(Param("p"), Var("v"), None), "x"), "if(parameters('p'), variables('v'), null()).x",
             "(p ? v : null).x"),
    Index: (Index(Param("p"), 0), "parameters('p')[0]", "p[0]"),
    Cond: (Cond(Equals(Param("p"), None), "it's", False), "if(equals(parameters('p'), null()), 'it''s', false())",
           "(p == null) ? 'it\\'s' : false"),
    Equals: (Equals(Param("p"), True), "equals(parameters('p'), true())", "p == true"),
    Interp: (Interp(("a{", Param("p"), "'b")), "format('a{{{0}''b', parameters('p'))", "'a{${p}\\'b'"),
    ResourceId: (ResourceId(STORAGE), "resourceId('Microsoft.Storage/storageAccounts', variables('storageName'))",
                 "storage.id"),
    ResourceName: (ResourceName(STORAGE), "variables('storageName')", "'acct'"),
    Properties: (Properties(STORAGE),
                 f"reference(resourceId('Microsoft.Storage/storageAccounts', variables('storageName')), "
                 f"'{STORAGE.api_version}')", "storage.properties"),
    ListKeys: (ListKeys(STORAGE),
               f"listKeys(resourceId('Microsoft.Storage/storageAccounts', variables('storageName')), "
               f"'{STORAGE.api_version}')", "storage.listKeys()"),
}


def _printed(node: Node) -> tuple[Any, str]:
    """The node as the value of an output: ARM JSON's value and Bicep's expression."""
    template = Template(
        description="nodes",
        metadata={},
        parameters=(Parameter("p", "string", "a parameter"),),
        variables=(Variable("v", "x"),),
        names={STORAGE: "acct"},
        resources=(),
        outputs=(Output("out", "string", node),),
    )
    bicep = bicep_template(template)
    prefix = "output out string = "
    return arm_template(template)["outputs"]["out"]["value"], bicep[bicep.index(prefix) + len(prefix):-1]


def test_every_node_of_the_model_has_both_printings_and_a_case() -> None:
    nodes = {value for value in vars(model).values()
             if isinstance(value, type) and issubclass(value, Node) and value is not Node}
    assert set(CASES) == nodes, "each node class needs a case here"
    assert [n.__name__ for n in nodes if inspect.isabstract(n)] == []


@pytest.mark.parametrize("kind", CASES, ids=lambda kind: kind.__name__)
def test_a_node_prints_itself(kind: type[Node]) -> None:
    node, arm, bicep = CASES[kind]
    assert type(node) is kind
    assert _printed(node) == (f"[{arm}]", bicep)


def test_a_node_without_a_printing_cannot_be_made() -> None:
    class Unprintable(Node):
        def arm(self, out: model.ArmWriter) -> str:
            return "x"

    with pytest.raises(TypeError, match="abstract"):
        Unprintable()
