"""The ARM template expression evaluator, without a server."""

from __future__ import annotations

import uuid

import pytest

from azinfer.names import unique_string
from azinfer.local.emulator.expressions import (
    Context,
    ExpressionError,
    Unknown,
    evaluate_string,
    evaluate_value,
    parse,
    tokenize,
)


class Ctx(Context):
    def __init__(self, **kw):
        super().__init__(
            {"name": "app", "count": 3, "flag": True, "obj": {"a": {"b": [10, 20]}}, "nothing": None,
             "list": ["x", "y"]},
            {"prefix": "ai", "full": "[concat(variables('prefix'), parameters('name'))]",
             "loop": "[variables('loop')]"},
            subscription_id="sub-1", resource_group="rg-1", location="westus3", **kw)

    def reference(self, target, api_version, full):
        return {"apiVersion": api_version, "properties": {"x": 1}} if full else {"fqdn": f"{target}.example"}

    def list_keys(self, target, api_version, action):
        return {"keys": [{"keyName": "key1", "value": "K1"}]}


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("[parameters('name')]", "app"),
        ("[variables('full')]", "aiapp"),
        ("[concat('a', 'b', parameters('count'))]", "ab3"),
        ("[concat(createArray(1), createArray(2, 3))]", [1, 2, 3]),
        ("[format('{0}-{1}', 'x', 2)]", "x-2"),
        ("[format('{{literal}} {0}', 'v')]", "{literal} v"),
        ("[coalesce(parameters('nothing'), null, 'fallback')]", "fallback"),
        ("[if(parameters('flag'), 'yes', 'no')]", "yes"),
        ("[if(false, parameters('missing'), 'lazy')]", "lazy"),
        ("[empty('')]", True),
        ("[empty(parameters('nothing'))]", True),
        ("[empty(createArray())]", True),
        ("[equals(parameters('count'), 3)]", True),
        ("[equals('a', 'A')]", False),
        ("[not(equals(1, 2))]", True),
        ("[and(true, not(false))]", True),
        ("[or(false, false)]", False),
        ("[substring('abcdef', 1, 3)]", "bcd"),
        ("[substring('abcdef', 2)]", "cdef"),
        ("[toLower('AbC')]", "abc"),
        ("[length(parameters('list'))]", 2),
        ("[length('four')]", 4),
        ("[join(parameters('list'), '; ')]", "x; y"),
        ("[createObject('k', 1, 'l', createArray('m'))]", {"k": 1, "l": ["m"]}),
        ("[union(createObject('a', 1), createObject('b', 2))]", {"a": 1, "b": 2}),
        ("[union(createArray(1, 2), createArray(2, 3))]", [1, 2, 3]),
        ("[string(parameters('count'))]", "3"),
        ("[string(createObject('a', 1))]", '{"a":1}'),
        ("[int('42')]", 42),
        ("[bool('true')]", True),
        ("[json('{\"a\": [1, null]}').a[0]]", 1),
        ("[json('null')]", None),
        ("[contains(parameters('list'), 'y')]", True),
        ("[contains('Hello', 'ell')]", True),
        ("[contains(parameters('obj'), 'A')]", True),
        ("[parameters('obj').a.b[1]]", 20),
        ("[parameters('obj')['a']['b'][0]]", 10),
        ("[resourceGroup().id]", "/subscriptions/sub-1/resourceGroups/rg-1"),
        ("[resourceGroup().name]", "rg-1"),
        ("[resourceGroup().location]", "westus3"),
        ("[subscription().subscriptionId]", "sub-1"),
        ("[subscription().id]", "/subscriptions/sub-1"),
        ("[resourceId('Microsoft.Storage/storageAccounts', 'st')]",
         "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Storage/storageAccounts/st"),
        ("[resourceId('Microsoft.Storage/storageAccounts/fileServices/shares', 'st', 'default', 'share')]",
         "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Storage/storageAccounts/st/fileServices/default/shares/share"),
        ("[resourceId('other-rg', 'Microsoft.App/managedEnvironments', 'env')]",
         "/subscriptions/sub-1/resourceGroups/other-rg/providers/Microsoft.App/managedEnvironments/env"),
        ("[reference('app', '2023-11-02-preview').fqdn]", "app.example"),
        ("[reference('app', '2023-11-02-preview', 'Full').properties.x]", 1),
        ("[listKeys(resourceId('Microsoft.Storage/storageAccounts', 'st'), '2023-01-01').keys[0].value]", "K1"),
        ("[uniqueString(resourceGroup().id)]", unique_string("/subscriptions/sub-1/resourceGroups/rg-1")),
        ("[substring(uniqueString(resourceGroup().id), 0, 5)]", unique_string("/subscriptions/sub-1/resourceGroups/rg-1")[:5]),
        ("[concat('it''s', ' ok')]", "it's ok"),
        ("[toLower(concat(parameters('name'), '-', string(add(1, 2))))]", "app-3"),
        ("[coalesce(null, true)]", True),
        ("[[notAnExpression]", "[notAnExpression]"),
        ("plain text", "plain text"),
        ("[ concat( 'a' , 'b' ) ]", "ab"),
    ],
)
def test_expressions(expr, expected):
    assert evaluate_string(expr, Ctx()) == expected


def test_nested_values_are_evaluated():
    value = {"a": ["[parameters('name')]", {"b": "[[x]"}], "n": 1}
    assert evaluate_value(value, Ctx()) == {"a": ["app", {"b": "[x]"}], "n": 1}


def test_new_guid_is_a_guid():
    assert uuid.UUID(evaluate_string("[newGuid()]", Ctx()))


@pytest.mark.parametrize(
    "expr, fragment",
    [
        ("[parameters('missing')]", "not found"),
        ("[variables('loop')]", "references itself"),
        ("[substring('abc', 2, 5)]", "length"),
        ("[concat('a']", "unexpected end"),
        ("[concat('a')) ]", "unexpected"),
        ("['unterminated]", "unterminated"),
        ("[noSuchFunction(1)]", "not valid"),
        ("[parameters('obj').nope]", "doesn't exist"),
        ("[parameters('list')[5]]", "out of bounds"),
        ("[resourceId('Microsoft.Storage/storageAccounts')]", "requires 1"),
        ("[if(true, 1)]", "expected 3"),
        ("[bareword]", "unknown identifier"),
    ],
)
def test_expression_errors(expr, fragment):
    with pytest.raises(ExpressionError) as info:
        evaluate_string(expr, Ctx())
    assert fragment in str(info.value)


def test_tokenizer_and_parser():
    kinds = [t.kind for t in tokenize("concat('a''b', 12, x.y[0])")]
    assert kinds == ["ident", "(", "str", ",", "num", ",", "ident", ".", "ident", "[", "num", "]", ")"]
    assert tokenize("'a''b'")[0].value == "a'b"
    assert parse("f(g(1), 'x').p").name == "p"


def test_unknown_propagates_as_expression_text():
    class WhatIfCtx(Ctx):
        def reference(self, target, api_version, full):
            return Unknown("ref")

    value = evaluate_string("[concat('https://', reference('app', '1').fqdn)]", WhatIfCtx())
    assert isinstance(value, Unknown)
    assert value.text == "[concat('https://', reference('app', '1').fqdn)]"
