"""ARM JSON and Bicep say the same thing: every parameter, resource property, dependency and output.

Both rendered files are read back from their text (ARM expressions with the
emulator's parser, Bicep with pycep) into one normal form
(``tests/template_equality.py``) and compared whole, for every plan variant
of the golden tests. A change made in one printer only fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_render import VARIANTS, _plan

from azinfer import render
from tests.template_equality import arm_form, bicep_form, differences, show, unused_bicep_names


@pytest.mark.parametrize("variant", VARIANTS)
def test_bicep_and_arm_json_are_equal_property_by_property(tmp_path: Path, variant: str) -> None:
    rendered = render(_plan(tmp_path, variant))
    arm, bicep = arm_form(rendered.template), bicep_form(rendered.bicep)
    assert differences(arm, bicep) == []
    # The comparison covered the whole template, not an empty corner of it.
    assert set(arm["parameters"]) == set(rendered.template["parameters"])
    assert len(arm["resources"]) == len(rendered.template["resources"]) + len(
        rendered.template["metadata"]["azinfer"]["existing"])
    assert set(arm["outputs"]) == set(rendered.template["outputs"])


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("minimumTlsVersion: 'TLS1_2'", "minimumTlsVersion: 'TLS1_0'",
         "resources.Microsoft.Storage/storageAccounts.body.properties.minimumTlsVersion"),
        ("days: 7", "days: 1",
         "resources.Microsoft.Storage/storageAccounts/fileServices.body.properties.shareDeleteRetentionPolicy.days"),
        ("retentionInDays: 30", "retentionInDays: 7",
         "resources.Microsoft.OperationalInsights/workspaces.body.properties.retentionInDays"),
        ("], gpuProfileType) ? 0 : 1", "], gpuProfileType) ? 1 : 0", "parameters.minReplicas.default"),
        ("@maxLength(24)", "@maxLength(30)", "parameters.storageAccountName.bounds.maxLength"),
        ("param apiKey string", "param apiKey string = newGuid()", "parameters.apiKey.default"),
        # A name instead of the share's symbol: the same value, but Bicep no longer waits for the share.
        ("shareName: share.name", "shareName: fileShareName",
         "resources.Microsoft.App/managedEnvironments/storages.dependsOn"),
    ],
)
def test_a_change_in_the_bicep_alone_is_reported_at_its_path(tmp_path: Path, old: str, new: str, path: str) -> None:
    rendered = render(_plan(tmp_path, "all-new"))
    assert old in rendered.bicep
    found = differences(arm_form(rendered.template), bicep_form(rendered.bicep.replace(old, new, 1)))
    assert [d.split(": ", 1)[0] for d in found] == [path], found


def test_a_change_in_the_arm_json_alone_is_reported_at_its_path(tmp_path: Path) -> None:
    rendered = render(_plan(tmp_path, "all-new"))
    template = rendered.template
    app = next(r for r in template["resources"] if r["type"] == "Microsoft.App/containerApps")
    app["properties"]["template"]["containers"][0]["volumeMounts"][0]["mountPath"] = "/share"
    found = differences(arm_form(template), bicep_form(rendered.bicep))
    assert found == [
        "resources.Microsoft.App/containerApps.body.properties.template.containers[0].volumeMounts[0].mountPath: "
        "ARM JSON '/share' | Bicep '/mount'"
    ]


def test_the_normal_form_reads_operators_and_symbols_as_arm_expressions() -> None:
    """pycep nests ``a.b ? c : d`` as ``a.(b ? c : d)``; the normal form reads what Bicep means.

    pycep gives binary operators no precedence (``a != b && c`` is read as
    ``a != (b && c)``), so an operand that is an operator is parenthesised:
    the Bicep printer writes them so.
    """
    bicep = bicep_form(
        "param flag string\n"
        "var settings = {\n  on: true\n}\n"
        "resource storage 'Microsoft.Storage/storageAccounts@2025-08-01' = {\n"
        "  name: 'acct${flag}'\n"
        "  properties: {\n"
        "    a: settings.on ? 'x\\'y' : flag ?? 'z'\n"
        "    b: storage.listKeys().keys[0].value\n"
        "    c: (flag != 'x') && settings.on\n"
        "  }\n"
        "}\n"
    )
    storage = bicep["resources"]["Microsoft.Storage/storageAccounts"]
    name = ("call", "format", "acct{0}", ("param", "flag"))
    assert storage["name"] == (name,)
    props = storage["body"]["properties"]
    assert show(props["a"]) == "if({\"on\": true}.on, \"x'y\", coalesce(parameters('flag'), 'z'))"
    assert props["b"] == ("prop", ("index", ("prop", ("listKeys", "Microsoft.Storage/storageAccounts", (name,),
                                                       "2025-08-01"), "keys"), 0), "value")
    arm = arm_form({
        "parameters": {"flag": {"type": "string"}},
        "variables": {"settings": {"on": True}},
        "resources": [{
            "type": "Microsoft.Storage/storageAccounts", "apiVersion": "2025-08-01",
            "name": "[format('acct{0}', parameters('flag'))]",
            "properties": {
                "a": "[if(variables('settings').on, 'x''y', coalesce(parameters('flag'), 'z'))]",
                "b": "[listKeys(resourceId('Microsoft.Storage/storageAccounts', format('acct{0}', parameters('flag'))), "
                     "'2025-08-01').keys[0].value]",
                "c": "[and(not(equals(parameters('flag'), 'x')), variables('settings').on)]",
            },
        }],
    })
    assert differences(arm, bicep) == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_language_is_what_bicep_emits_and_no_parameter_takes_null(tmp_path: Path, variant: str) -> None:
    """No nullable type: the ARM JSON is the languageVersion 1.0 Bicep emits, and the parameters file passes no null.

    A nullable type would make Bicep emit languageVersion 2.0 (symbolic names); ARM takes a null only for a
    parameter declared nullable, which 1.0 has no way to say. Optional parameters have defaults instead.
    """
    rendered = render(_plan(tmp_path, variant))
    arm, bicep = arm_form(rendered.template), bicep_form(rendered.bicep)
    assert arm["languageVersion"] == bicep["languageVersion"] == "1.0"
    assert "languageVersion" not in rendered.template
    assert [name for name, p in arm["parameters"].items() if p["nullable"]] == []
    assert [name for name, entry in rendered.parameter_values.items() if entry["value"] is None] == []


def test_a_nullable_bicep_parameter_against_a_1_0_template_is_reported() -> None:
    template = {"parameters": {"name": {"type": "string", "nullable": True}}, "resources": []}
    found = differences(arm_form(template), bicep_form("param name string?\n"))
    assert found == ["languageVersion: ARM JSON '1.0' | Bicep '2.0'"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_bicep_reads_as_written_by_hand(tmp_path: Path, variant: str) -> None:
    text = render(_plan(tmp_path, variant)).bicep
    assert "dependsOn" not in text, "dependencies are implied by symbolic references"
    assert "newGuid" not in text
    unused_variables, unused_parameters = unused_bicep_names(text)
    assert unused_variables == []
    # An unused parameter is one of the project's (inference.parameters.json passes it), marked for the linter.
    for name in unused_parameters:
        assert re.search(rf"#disable-next-line no-unused-params\nparam {name} ", text), name
    for name in ("storageAccountName", "fileShareName", "acaLogAnalyticsName", "acaEnvironmentName",
                 "acaEnvironmentStorageName", "acaAppName"):
        block = re.search(rf"((?:[@#/].*\n)*)param {name} string = ", text)
        assert block is not None, name
        assert "@minLength(" in block.group(1) and "@maxLength(" in block.group(1), name
        assert "Azure\\'s rule:" in block.group(1), name
