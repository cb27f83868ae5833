"""Resource-group deployments (Microsoft.Resources/deployments): the template engine, what-if, operations.

The engine evaluates classic ARM JSON templates (``resources`` as an array):
parameters with defaults (``[newGuid()]`` allowed there only), variables,
resources with ``condition``, ``dependsOn``, ``copy`` loops and nested child
resources, and outputs.  Each resource is PUT into the emulator state as its
resource provider would have been called (the same validation as the HTTP
API), in dependency order; ``reference()``/``list*()`` of a resource of the
template deploy that resource first (ARM's implicit dependency).

Lifecycle: PUT validates synchronously (400 ``InvalidTemplate`` on errors) and
answers 201 with ``Azure-AsyncOperation``; the deployment stays ``Running``
while its operation has polls left (status polls and GETs of the deployment
both count), then runs, ending ``Succeeded`` or ``Failed``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import operator
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import providers
from .expressions import Context, ExpressionError, Unknown, evaluate_value, to_arm_string
from .messages import ArmError, Request, RequestRecord, Response
from .state import Operation, at_path, parse_resource_id

if TYPE_CHECKING:  # pragma: no cover
    from .server import ArmEmulator


__all__ = ["DeploymentEngine", "Deployment", "TemplateError"]

DEPLOYMENT_TYPE = "Microsoft.Resources/deployments"
_TYPE_NAMES = {"string": "String", "securestring": "SecureString", "int": "Int", "bool": "Bool",
               "object": "Object", "secureobject": "SecureObject", "array": "Array"}


class TemplateError(Exception):
    def __init__(self, message: str, code: str = "InvalidTemplate") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ResourceFailure(Exception):
    def __init__(self, status: int, code: str, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or []


_STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 400: "BadRequest", 404: "NotFound",
                409: "Conflict", 429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}


@dataclass
class PlannedResource:
    index: int
    raw: dict[str, Any]
    copy_index: dict[str, int]
    type: str
    name: str
    id: str
    api_version: str
    condition: bool
    depends_on: list[str]  # raw (evaluated) entries
    parent_id: str | None = None


@dataclass
class Deployment:
    id: str
    name: str
    subscription: str
    resource_group: str
    template: dict[str, Any]
    parameters_in: dict[str, Any]
    mode: str
    parameters: dict[str, Any] = field(default_factory=dict)  # evaluated, {name: value}
    param_types: dict[str, str] = field(default_factory=dict)
    state: str = "Accepted"
    outputs: dict[str, Any] | None = None
    output_resources: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None
    operations: list[dict[str, Any]] = field(default_factory=list)
    timestamp: float = field(default_factory=time.time)
    end: float | None = None
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    op: Operation | None = None
    template_hash: str = ""

    @property
    def active(self) -> bool:
        return self.state in ("Accepted", "Running")

    def view(self) -> dict[str, Any]:
        props: dict[str, Any] = {
            "templateHash": self.template_hash,
            "parameters": {
                k: ({"type": self.param_types.get(k, "String")} if self.param_types.get(k, "").startswith("Secure")
                    else {"type": self.param_types.get(k, "String"), "value": v})
                for k, v in self.parameters.items()},
            "mode": self.mode,
            "provisioningState": self.state,
            "timestamp": providers.iso_now(self.end or self.timestamp),
            "duration": _duration((self.end or time.time()) - self.timestamp),
            "correlationId": self.correlation_id,
            "providers": [],
            "dependencies": [],
        }
        if self.outputs is not None:
            props["outputs"] = self.outputs
            props["outputResources"] = [{"id": rid} for rid in self.output_resources]
        if self.error is not None:
            props["error"] = self.error
        return {"id": self.id, "name": self.name, "type": DEPLOYMENT_TYPE, "properties": props}


def _duration(seconds: float) -> str:
    return f"PT{max(seconds, 0):.7f}S"


class _DeployContext(Context):
    """Expression context of one deployment run (mode 'apply', 'validate' or 'whatif')."""

    def __init__(self, engine: DeploymentEngine, dep: Deployment, mode: str) -> None:
        group = engine.emu.state.resource_group(dep.subscription, dep.resource_group) or {}
        super().__init__({}, dep.template.get("variables") or {}, subscription_id=dep.subscription,
                         resource_group=group.get("name", dep.resource_group),
                         location=group.get("location", "eastus"), tenant_id=engine.emu.tenant_id,
                         deployment_name=dep.name)
        self.engine = engine
        self.dep = dep
        self.mode = mode
        self.plan: list[PlannedResource] = []
        self.applied: dict[str, str] = {}  # lower id -> Succeeded | Failed | Running
        self.in_default = False
        self.copy_index: dict[str, int] = {}
        self.current_copy: str | None = None
        self.tags = dep.template.get("tags")

    def resource_group(self) -> dict[str, Any]:
        group = self.engine.emu.state.resource_group(self.subscription_id, self.resource_group_name)
        return copy.deepcopy(group) if group else super().resource_group()

    def deployment(self) -> dict[str, Any]:
        return {"name": self.dep.name, "properties": {"template": {"contentVersion": self.dep.template.get("contentVersion", "1.0.0.0")},
                                                       "mode": self.dep.mode}}

    def variable(self, name: str) -> Any:
        if self.in_default:  # parameters are evaluated before variables (Bicep: BCP072)
            raise ExpressionError(f"The template variable '{name}' cannot be referenced in a parameter's default "
                                  "value: only parameters and functions can.")
        return super().variable(name)

    def new_guid(self) -> str:
        if not self.in_default:
            raise ExpressionError("The template function 'newGuid' is not expected at this location. "
                                  "It can only be used in the default value of a parameter.")
        return str(uuid.uuid4())

    def _target_id(self, target: str) -> str:
        if target.lower().startswith("/subscriptions/"):
            return target
        matches = [p for p in self.plan if p.name.lower() == target.lower()]
        if not matches:
            raise ExpressionError(f"The resource '{target}' is not defined in the template.")
        return matches[0].id

    def _ensure_applied(self, rid: str) -> None:
        if self.mode != "apply":
            return
        planned = next((p for p in self.plan if p.id.lower() == rid.lower() and p.condition), None)
        if planned is None:
            return
        status = self.applied.get(rid.lower())
        if status is None:
            self.engine._apply_one(self, planned)
            status = self.applied.get(rid.lower())
        if status == "Running":
            raise ExpressionError(f"Circular dependency detected on resource '{rid}'.")
        if status in ("Failed", "Skipped"):
            raise ResourceFailure(409, "ResourceDeploymentFailure",
                                  f"The resource '{rid}' it depends on failed to deploy.")

    def reference(self, target: str, api_version: Any, full: bool) -> Any:
        rid = self._target_id(target)
        self._ensure_applied(rid)
        res = self.engine.emu.state.get(rid)
        if res is None:
            if self.mode != "apply":
                return Unknown(f"[reference('{target}')]")
            raise ResourceFailure(404, "ResourceNotFound", f"The Resource '{rid}' was not found.")
        view = res.view()
        if full:
            return {"apiVersion": api_version, **view}
        return view.get("properties", {})

    def list_keys(self, target: str, api_version: Any, action: str) -> Any:
        rid = self._target_id(target)
        self._ensure_applied(rid)
        res = self.engine.emu.state.get(rid)
        emu = self.engine.emu
        if res is None:
            if self.mode != "apply":
                return Unknown(f"[{action}('{target}', '{api_version}')]")
            raise ResourceFailure(404, "ResourceNotFound", f"The Resource '{rid}' was not found.")
        if self.mode == "apply":
            emu.record(_record(emu, "POST", f"{res.id}/{action}", str(api_version), None, 200, self.dep.name))
        rtype, act = res.type.lower(), action.lower()
        if rtype == "microsoft.storage/storageaccounts" and act == "listkeys":
            return providers.storage_keys(res)
        if rtype == "microsoft.operationalinsights/workspaces" and act in ("listkeys", "sharedkeys"):
            return providers.workspace_keys(res)
        if rtype in ("microsoft.app/containerapps", "microsoft.app/jobs") and act == "listsecrets":
            secrets = ((res.input.get("properties") or {}).get("configuration") or {}).get("secrets") or []
            return {"value": copy.deepcopy(secrets)}
        raise ExpressionError(f"The action '{action}' on '{res.type}' is not supported by the emulator.")


def _record(emu: ArmEmulator, method: str, path: str, api_version: str | None, body: Any, status: int,
            deployment: str) -> RequestRecord:
    return RequestRecord(method, path, api_version, body, {"api-version": api_version or ""}, {}, status,
                         source=f"deployment:{deployment}")


def _param_type_ok(ptype: str, value: Any) -> bool:
    t = ptype.lower()
    if value is None:
        return True
    if t in ("string", "securestring"):
        return isinstance(value, str)
    if t == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "bool":
        return isinstance(value, bool)
    if t in ("object", "secureobject"):
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    return True


class DeploymentEngine:
    def __init__(self, emu: ArmEmulator) -> None:
        self.emu = emu

    # ---------------------------------------------------------------------------------------------
    def get(self, sub: str, rg: str, name: str) -> Deployment | None:
        key = f"/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.resources/deployments/{name}".lower()
        return self.emu.state.deployments.get(key)

    def hold_running(self, sub: str, rg: str, name: str, template: dict[str, Any] | None = None) -> Deployment:
        """Fault: a deployment of this name that is (and stays) Running until cancelled."""
        dep = self._new(sub, rg, name, {"template": template or {"resources": []}, "parameters": {},
                                        "mode": "Incremental"})
        dep.state = "Running"
        dep.op = self.emu.start_operation(None, kind="deployment", resource_id=dep.id,
                                          namespace="Microsoft.Resources", location="global", polls=10**9)
        self.emu.state.deployments[dep.id.lower()] = dep
        return dep

    def _new(self, sub: str, rg: str, name: str, props: dict[str, Any]) -> Deployment:
        group = self.emu.state.resource_group(sub, rg)
        rid = f"/subscriptions/{sub}/resourceGroups/{group['name'] if group else rg}/providers/{DEPLOYMENT_TYPE}/{name}"
        template = props.get("template")
        if template is None:
            if props.get("templateLink"):
                raise TemplateError("templateLink is not supported by the ARM emulator; send the template inline.")
            raise TemplateError("The request content must have a template.", "InvalidRequestContent")
        return Deployment(id=rid, name=name, subscription=sub, resource_group=group["name"] if group else rg,
                          template=copy.deepcopy(template), parameters_in=copy.deepcopy(props.get("parameters") or {}),
                          mode=props.get("mode", "Incremental"),
                          template_hash=str(int(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:15], 16)))

    # routing ---------------------------------------------------------------------------------------
    def route(self, req: Request, sub: str, rg: str, tail: list[str]) -> Response:
        low = [t.lower() for t in tail]
        if not tail:
            if req.method != "GET":
                raise ArmError(405, "MethodNotAllowed", "deployments collection takes GET")
            prefix = f"/subscriptions/{sub}/resourcegroups/{rg}/".lower()
            return Response(200, {"value": [d.view() for k, d in self.emu.state.deployments.items() if k.startswith(prefix)]})
        name = tail[0]
        dep = self.get(sub, rg, name)
        if len(tail) == 1:
            if req.method in ("GET", "HEAD"):
                if dep is None:
                    raise ArmError(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")
                if dep.active and dep.op is not None:
                    self.emu.state.advance(dep.op)
                return Response(200 if req.method == "GET" else 204, dep.view())
            if req.method == "PUT":
                return self._put(req, sub, rg, name, dep)
            if req.method == "DELETE":
                if dep is None:
                    return Response(204)
                if dep.active:
                    raise ArmError(409, "DeploymentActive", f"The deployment '{name}' is still active.")
                del self.emu.state.deployments[dep.id.lower()]
                return Response(200)
        action = low[1]
        if action == "cancel" and req.method == "POST":
            if dep is None:
                raise ArmError(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")
            if not dep.active:
                raise ArmError(409, "DeploymentCannotBeCancelled",
                               f"The deployment '{name}' is in state '{dep.state}' and cannot be cancelled.")
            dep.state, dep.end = "Canceled", time.time()
            if dep.op is not None:
                dep.op.status, dep.op.end = "Canceled", time.time()
            return Response(204)
        if action == "validate" and req.method == "POST":
            return self._validate(req, sub, rg, name)
        if action == "whatif" and req.method == "POST":
            return self._what_if(req, sub, rg, name)
        if action == "exporttemplate" and req.method == "POST":
            if dep is None:
                raise ArmError(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")
            return Response(200, {"template": dep.template})
        if action == "operations" and req.method == "GET":
            if dep is None:
                raise ArmError(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")
            if len(tail) == 2:
                return Response(200, {"value": copy.deepcopy(dep.operations)})
            op = next((o for o in dep.operations if o["operationId"].lower() == low[2]), None)
            if op is None:
                raise ArmError(404, "DeploymentOperationNotFound", f"Operation '{tail[2]}' could not be found.")
            return Response(200, copy.deepcopy(op))
        raise ArmError(404, "NotFound", f"No route for '{req.path}'.")

    def _body(self, req: Request) -> dict[str, Any]:
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise ArmError(400, "InvalidRequestContent", "The request content must have 'properties'.")
        properties: dict[str, Any] = body["properties"]
        return properties

    def _prepare(self, req: Request, sub: str, rg: str, name: str, mode: str) -> tuple[Deployment, _DeployContext]:
        try:
            dep = self._new(sub, rg, name, self._body(req))
            ctx = _DeployContext(self, dep, mode)
            self._evaluate_parameters(ctx)
            self._plan(ctx)
            # ARM validates every expression before running; only reference()/list*() wait for the run
            ctx.mode, real_mode = "validate", ctx.mode
            try:
                for p in ctx.plan:
                    if p.condition:
                        self._body_for(ctx, p)
                for spec in (dep.template.get("outputs") or {}).values():
                    evaluate_value(spec.get("value"), ctx)
            finally:
                ctx.mode = real_mode
        except TemplateError as exc:
            raise ArmError(400, exc.code, exc.message) from None
        except ExpressionError as exc:
            raise ArmError(400, "InvalidTemplate", f"Deployment template validation failed: '{exc}'.") from None
        return dep, ctx

    def _put(self, req: Request, sub: str, rg: str, name: str, existing: Deployment | None) -> Response:
        if existing is not None and existing.active:
            raise ArmError(409, "DeploymentActive",
                           f"Unable to edit or replace deployment '{name}': previous deployment from "
                           f"'{providers.iso_now(existing.timestamp)}' is still active. Please see "
                           "https://aka.ms/arm-deploy for usage details.")
        dep, ctx = self._prepare(req, sub, rg, name, "apply")
        self.emu.state.deployments[dep.id.lower()] = dep

        def run(op: Operation) -> None:
            if dep.state == "Canceled":
                return
            self._execute(ctx)
            if dep.state == "Succeeded":  # a running container app's revision must start first
                self.emu.apps.containers.hold(dep, op, lambda app_id, error: self._fail_resource(dep, app_id, error))
            if dep.state == "Failed":
                op.status = "Failed"
                op.error = dep.error

        dep.op = self.emu.start_operation(req, kind="deployment", resource_id=dep.id, namespace="Microsoft.Resources",
                                          location=ctx.location, on_complete=run)
        dep.state = "Running" if dep.op.polls_left > 0 else "Accepted"
        headers = self.emu.lro_headers(dep.op, req, location=False)
        return Response(201 if existing is None else 200, dep.view(), headers)

    def _validate(self, req: Request, sub: str, rg: str, name: str) -> Response:
        dep, ctx = self._prepare(req, sub, rg, name, "validate")
        resources = []
        for p in ctx.plan:
            if p.condition:
                resources.append({"id": p.id})
        view = dep.view()
        view["properties"]["provisioningState"] = "Succeeded"
        view["properties"]["validatedResources"] = resources
        return Response(200, view)

    def _what_if(self, req: Request, sub: str, rg: str, name: str) -> Response:
        dep, ctx = self._prepare(req, sub, rg, name, "whatif")
        result = self._what_if_result(ctx)
        op = self.emu.start_operation(req, kind="whatIf", resource_id=dep.id, namespace="Microsoft.Resources",
                                      location=ctx.location)
        op.result = result
        return Response(202, None, self.emu.lro_headers(op, req, async_op=False))

    # template evaluation -------------------------------------------------------------------------
    def _evaluate_parameters(self, ctx: _DeployContext) -> None:
        dep = ctx.dep
        template = dep.template
        if not isinstance(template.get("resources", []), list):
            raise TemplateError("The emulator supports templates whose 'resources' is an array (classic syntax).")
        defs = template.get("parameters") or {}
        given = {}
        for key, value in dep.parameters_in.items():
            if not isinstance(value, dict) or ("value" not in value and "reference" not in value):
                raise TemplateError(f"The parameter '{key}' must be an object with a 'value'.", "InvalidRequestContent")
            if "reference" in value:
                raise TemplateError("Key Vault parameter references are not supported by the emulator.")
            given[key.lower()] = value["value"]
        unknown = [k for k in dep.parameters_in if k.lower() not in {d.lower() for d in defs}]
        if unknown:
            raise TemplateError(
                f"The template parameters '{', '.join(unknown)}' in the parameters file are not valid; "
                "they are not present in the original template and can therefore not be provided at deployment time.")
        values: dict[str, Any] = {}
        ctx.parameters = values
        language = str(template.get("languageVersion", "1.0"))
        for pname, pdef in defs.items():
            ptype = str(pdef.get("type", "string"))
            dep.param_types[pname] = _TYPE_NAMES.get(ptype.lower(), ptype)
            if pdef.get("nullable") and language != "2.0":
                raise TemplateError(f"Deployment template validation failed: 'The template parameter '{pname}' is "
                                    f"declared nullable, which languageVersion '{language}' does not support; "
                                    "nullable types need languageVersion 2.0.'.")
            if pname.lower() in given:
                value = given[pname.lower()]
                if value is None and not pdef.get("nullable"):
                    raise TemplateError(f"The value of deployment parameter '{pname}' is null. Please specify the "
                                        "value or use the parameter reference. See "
                                        "https://aka.ms/resource-manager-parameter-files for details.",
                                        "InvalidDeploymentParameterValue")
            elif "defaultValue" in pdef:
                ctx.in_default = True
                try:
                    value = evaluate_value(pdef["defaultValue"], ctx)
                finally:
                    ctx.in_default = False
            else:
                raise TemplateError(f"Deployment template validation failed: 'The value for the template parameter "
                                    f"'{pname}' is not provided. Please see https://aka.ms/arm-create-parameter-file "
                                    "for usage details.'.")
            if not _param_type_ok(ptype, value):
                raise TemplateError(f"Deployment template validation failed: 'The provided value for the template "
                                    f"parameter '{pname}' is not valid. Expected a value of type '{dep.param_types[pname]}'.'.")
            allowed = pdef.get("allowedValues")
            if allowed is not None and value not in allowed:
                raise TemplateError(f"Deployment template validation failed: 'The provided value '{value}' for the "
                                    f"template parameter '{pname}' is not valid. The parameter value is not part "
                                    f"of the allowed value(s): '{','.join(map(str, allowed))}'.'.")
            for bound, check in (("minValue", operator.ge), ("maxValue", operator.le)):
                if bound in pdef and isinstance(value, int) and not check(value, pdef[bound]):
                    raise TemplateError(f"The provided value for the template parameter '{pname}' is out of range.")
            for bound, check in (("minLength", operator.ge), ("maxLength", operator.le)):
                if bound in pdef and isinstance(value, (str, list)) and not check(len(value), pdef[bound]):
                    raise TemplateError(f"The provided value for the template parameter '{pname}' has an invalid length.")
            values[pname] = value
        dep.parameters = dict(values)

    def _plan(self, ctx: _DeployContext) -> None:
        plan: list[PlannedResource] = []

        def add(raw: dict[str, Any], parent: PlannedResource | None, copy_index: dict[str, int]) -> None:
            ctx.copy_index = copy_index
            rtype = to_arm_string(evaluate_value(raw.get("type"), ctx))
            name = to_arm_string(evaluate_value(raw.get("name"), ctx))
            if not rtype or not name:
                raise TemplateError("Every resource needs a 'type' and a 'name'.")
            if parent is not None and "/" not in rtype.split("/", 1)[-1] and rtype.count("/") == 0:
                rtype = f"{parent.type}/{rtype}"
                name = f"{parent.name}/{name}" if name.count("/") < rtype.count("/") - 1 else name
            namespace, *types = rtype.split("/")
            names = name.split("/")
            if len(types) != len(names):
                raise TemplateError(f"Deployment template validation failed: 'The template resource '{name}' for "
                                    f"type '{rtype}' has incorrect segment lengths. A nested resource type must "
                                    "have identical number of segments as its resource name.'.")
            rid = (f"/subscriptions/{ctx.subscription_id}/resourceGroups/{ctx.resource_group_name}/providers/"
                   f"{namespace}/" + "/".join(f"{t}/{n}" for t, n in zip(types, names)))
            cond = raw.get("condition", True)
            cond_value = evaluate_value(cond, ctx)
            if isinstance(cond_value, Unknown):
                cond_value = True
            if not isinstance(cond_value, bool):
                raise TemplateError(f"The 'condition' of resource '{name}' must be a Boolean.")
            depends = [to_arm_string(evaluate_value(d, ctx)) for d in raw.get("dependsOn") or []]
            if parent is not None:
                depends.append(parent.id)
                cond_value = cond_value and parent.condition
            api_version = raw.get("apiVersion")
            if not api_version:
                raise TemplateError(f"The resource '{name}' has no 'apiVersion'.")
            item = PlannedResource(len(plan), raw, dict(copy_index), rtype, name, rid, api_version, cond_value,
                                   depends, parent.id if parent else None)
            plan.append(item)
            for child in raw.get("resources") or []:
                add(child, item, copy_index)

        for raw in ctx.dep.template.get("resources") or []:
            if not isinstance(raw, dict):
                raise TemplateError("Each resource must be an object.")
            loop = raw.get("copy")
            if loop:
                count = evaluate_value(loop.get("count"), ctx)
                if not isinstance(count, int) or count < 0 or count > 800:
                    raise TemplateError(f"The copy count of '{loop.get('name')}' must be an integer from 0 to 800.")
                for i in range(count):
                    add(raw, None, {loop["name"].lower(): i, "": i})
            else:
                add(raw, None, {})
        ids = [p.id.lower() for p in plan]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise TemplateError(f"Deployment template validation failed: 'The resource '{dup}' is defined multiple "
                                "times in a template.'.")
        ctx.plan = plan
        ctx.copy_index = {}
        # resolve dependsOn to ids now: they must name template resources
        for p in plan:
            resolved = []
            for d in p.depends_on:
                target = next((q for q in plan if q.id.lower() == d.lower() or q.name.lower() == d.lower()
                               or q.name.split("/")[-1].lower() == d.lower()), None)
                if target is None:
                    raise TemplateError(f"Deployment template validation failed: 'The resource '{d}' is not defined "
                                        "in the template.'.")
                resolved.append(target.id)
            p.depends_on = resolved

    def _body_for(self, ctx: _DeployContext, p: PlannedResource) -> dict[str, Any]:
        ctx.copy_index = p.copy_index
        try:
            body = {k: evaluate_value(v, ctx) for k, v in p.raw.items()
                    if k not in ("type", "name", "apiVersion", "dependsOn", "condition", "copy", "resources", "comments")}
        finally:
            ctx.copy_index = {}
        return body

    # apply ---------------------------------------------------------------------------------------------
    def _execute(self, ctx: _DeployContext) -> None:
        dep = ctx.dep
        dep.state = "Running"
        failed_any = False
        for p in ctx.plan:
            if not p.condition:
                continue
            self._apply_one(ctx, p)
        failed_any = any(v == "Failed" for v in ctx.applied.values())
        if not failed_any:
            try:
                dep.outputs = self._outputs(ctx)
                dep.output_resources = [p.id for p in ctx.plan if p.condition]
                if dep.mode.lower() == "complete":
                    keep = {p.id.lower() for p in ctx.plan if p.condition}
                    for res in self.emu.state.list_in_group(dep.subscription, dep.resource_group):
                        if res.id.lower() not in keep and parse_resource_id(res.id).parent is None:
                            self.emu.record(_record(self.emu, "DELETE", res.id, None, None, 200, dep.name))
                            self.emu.state.delete(res.id)
                self._add_operation(dep, None, "EvaluateDeploymentOutput", "Succeeded", 200, {"status": "OK"})
            except (ExpressionError, ResourceFailure) as exc:
                failed_any = True
                err = {"code": getattr(exc, "code", "DeploymentOutputEvaluationFailed"), "message": str(exc)}
                self._add_operation(dep, None, "EvaluateDeploymentOutput", "Failed", 400,
                                    {"status": "Failed", "error": err})
        dep.end = time.time()
        if failed_any:
            self._failed(dep)
        else:
            dep.state = "Succeeded"

    def _failed(self, dep: Deployment) -> None:
        dep.state, dep.end = "Failed", time.time()
        details = [o["properties"]["statusMessage"]["error"] for o in dep.operations
                   if o["properties"]["provisioningState"] == "Failed"]
        dep.error = {"code": "DeploymentFailed",
                     "target": dep.id,
                     "message": "At least one resource deployment operation failed. Please list deployment "
                                "operations for details. Please see https://aka.ms/arm-deployment-operations "
                                "for usage details.",
                     "details": details}

    def _fail_resource(self, dep: Deployment, resource_id: str, error: dict[str, Any]) -> None:
        """A resource the deployment had applied failed afterwards (a revision that never started): its
        operation and the deployment end Failed with ``error``."""
        for o in dep.operations:
            props = o["properties"]
            if (props.get("targetResource") or {}).get("id", "").lower() == resource_id.lower():
                props.update(provisioningState="Failed", statusCode="Conflict",
                             statusMessage={"status": "Failed", "error": {**error, "details": []}})
        res = self.emu.state.get(resource_id)
        if res is not None:
            res.computed.setdefault("properties", {})["provisioningState"] = "Failed"
        self._failed(dep)

    def _apply_one(self, ctx: _DeployContext, p: PlannedResource) -> None:
        key = p.id.lower()
        if key in ctx.applied:
            return
        ctx.applied[key] = "Running"
        dep = ctx.dep
        for d in p.depends_on:
            target = next(q for q in ctx.plan if q.id == d)
            if target.condition:
                self._apply_one(ctx, target)
                if ctx.applied.get(d.lower()) in ("Failed", "Skipped"):
                    ctx.applied[key] = "Skipped"
                    return
        rid = parse_resource_id(p.id)
        body: Any = None
        try:
            fault = self.emu.faults.take_resource_failure(p.id, rid.name)
            if fault is not None:
                raise ResourceFailure(fault.status, fault.code, fault.message)
            body = self._body_for(ctx, p)
            if rid.type.lower() == DEPLOYMENT_TYPE.lower():
                raise ResourceFailure(400, "InvalidTemplate", "Nested deployments are not supported by the ARM emulator.")
            group = ctx.resource_group()
            spec = providers.spec_for(rid.type)
            if spec.tracked and "location" not in body:
                body["location"] = group.get("location")
            existing = self.emu._get_or_implicit(rid) if self.emu.state.resource_group(rid.subscription, rid.resource_group or "") else None
            res = self.emu.provider_put(rid, body, existing)
            status = 200 if existing is not None else 201
            self.emu.record(_record(self.emu, "PUT", res.id, p.api_version, body, status, dep.name))
            ctx.applied[key] = "Succeeded"
            self._add_operation(dep, p, "Create", "Succeeded", status, {"status": "OK"})
        except (ArmError, ResourceFailure) as exc:  # the provider (or a fault) said no
            self.emu.record(_record(self.emu, "PUT", p.id, p.api_version, body, exc.status, dep.name))
            ctx.applied[key] = "Failed"
            self._add_operation(dep, p, "Create", "Failed", exc.status,
                                {"status": "Failed", "error": {"code": exc.code, "message": exc.message,
                                                               "details": exc.details}})
        except ExpressionError as exc:
            ctx.applied[key] = "Failed"
            self._add_operation(dep, p, "Create", "Failed", 400,
                                {"status": "Failed", "error": {"code": "InvalidTemplate", "message": str(exc),
                                                               "details": []}})

    def _add_operation(self, dep: Deployment, p: PlannedResource | None, kind: str, state: str, status: int,
                       message: dict[str, Any]) -> None:
        op_id = uuid.uuid4().hex[:16].upper()
        props: dict[str, Any] = {
            "provisioningOperation": kind,
            "provisioningState": state,
            "timestamp": providers.iso_now(),
            "duration": _duration(0.01),
            "trackingId": str(uuid.uuid4()),
            "serviceRequestId": str(uuid.uuid4()),
            "statusCode": _STATUS_TEXT.get(status, str(status)),
            "statusMessage": message,
        }
        if p is not None:
            rid = parse_resource_id(p.id)
            props["targetResource"] = {"id": p.id, "resourceType": rid.type, "resourceName": p.name,
                                       "apiVersion": p.api_version}
        dep.operations.append({"id": f"{dep.id}/operations/{op_id}", "operationId": op_id, "properties": props})

    def _outputs(self, ctx: _DeployContext) -> dict[str, Any]:
        out = {}
        for name, spec in (ctx.dep.template.get("outputs") or {}).items():
            if "condition" in spec and not evaluate_value(spec["condition"], ctx):
                continue
            if "copy" in spec:
                raise ExpressionError("output copy loops are not supported by the emulator")
            value = evaluate_value(spec.get("value"), ctx)
            ptype = str(spec.get("type", "string"))
            out[name] = {"type": _TYPE_NAMES.get(ptype.lower(), ptype), "value": value}
        return out

    # what-if ---------------------------------------------------------------------------------------------
    def _what_if_result(self, ctx: _DeployContext) -> dict[str, Any]:
        changes = []
        seen = set()
        for p in ctx.plan:
            if not p.condition:
                continue
            seen.add(p.id.lower())
            rid = parse_resource_id(p.id)
            body = self._body_for(ctx, p)
            spec = providers.spec_for(rid.type)
            if spec.tracked and "location" not in body:
                body["location"] = ctx.location
            existing = self.emu._get_or_implicit(rid) if self.emu.state.resource_group(rid.subscription, rid.resource_group or "") else None
            after_input = _mask(_renderable(providers.clean_input(rid, body)), spec.secret_paths)
            after = {"apiVersion": p.api_version, "id": p.id, "name": rid.name, "type": rid.type, **after_input}
            if existing is None:
                changes.append({"resourceId": p.id, "changeType": "Create", "after": after})
                continue
            before_input = _mask(copy.deepcopy(existing.input), spec.secret_paths)
            before = {"apiVersion": p.api_version, "id": existing.id, "name": existing.name, "type": existing.type,
                      **before_input}
            delta = _diff(before_input, after_input, "")
            changes.append({"resourceId": existing.id, "changeType": "Modify" if delta else "NoChange",
                            "before": before, "after": after, **({"delta": delta} if delta else {})})
        for res in self.emu.state.list_in_group(ctx.subscription_id, ctx.resource_group_name):
            if res.id.lower() in seen or parse_resource_id(res.id).parent is not None:
                continue
            if ctx.dep.mode.lower() == "complete":
                changes.append({"resourceId": res.id, "changeType": "Delete", "before": res.view()})
            else:
                changes.append({"resourceId": res.id, "changeType": "Ignore", "before": res.view()})
        return {"status": "Succeeded", "properties": {"changes": changes}}


def _mask(value: Any, paths: tuple[tuple[str, ...], ...]) -> Any:
    """Write-only values (keys, secrets) as a digest: what-if tells whether they change without showing them."""
    def digest(parent: dict[str, Any], key: str) -> None:
        if isinstance(parent[key], str) and not parent[key].startswith("["):
            parent[key] = "[secure:" + hashlib.sha256(parent[key].encode()).hexdigest()[:12] + "]"

    for path in paths:
        at_path(value, path, digest)
    return value


def _renderable(value: Any) -> Any:
    if isinstance(value, Unknown):
        return value.text
    if isinstance(value, dict):
        return {k: _renderable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_renderable(v) for v in value]
    return value


def _same(a: Any, b: Any, key: str) -> bool:
    if key.lower().endswith("location") and isinstance(a, str) and isinstance(b, str):
        return a.replace(" ", "").lower() == b.replace(" ", "").lower()
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _diff(before: Any, after: Any, path: str) -> list[dict[str, Any]]:
    """ARM what-if property changes: objects flattened to dotted paths, arrays as 'Array' with children."""
    def join(p: str, k: str) -> str:
        return f"{p}.{k}" if p else k

    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        bkeys = {k.lower(): k for k in before}
        akeys = {k.lower(): k for k in after}
        for low_key in list(bkeys) + [k for k in akeys if k not in bkeys]:
            bk, ak = bkeys.get(low_key), akeys.get(low_key)
            if bk is not None and ak is None:
                out.append({"path": join(path, bk), "propertyChangeType": "Delete", "before": before[bk]})
            elif ak is not None and bk is None:
                out.append({"path": join(path, ak), "propertyChangeType": "Create", "after": after[ak]})
            elif bk is not None and ak is not None:
                out.extend(_diff(before[bk], after[ak], join(path, ak)))
        return out
    if isinstance(before, list) and isinstance(after, list):
        if before == after:
            return []
        children = []
        for i in range(max(len(before), len(after))):
            if i >= len(before):
                children.append({"path": str(i), "propertyChangeType": "Create", "after": after[i]})
            elif i >= len(after):
                children.append({"path": str(i), "propertyChangeType": "Delete", "before": before[i]})
            elif before[i] != after[i]:
                sub = _diff(before[i], after[i], "")
                if isinstance(before[i], dict) and isinstance(after[i], dict):
                    children.append({"path": str(i), "propertyChangeType": "Modify", "children": sub})
                else:
                    children.append({"path": str(i), "propertyChangeType": "Modify", "before": before[i],
                                     "after": after[i]})
        return [{"path": path, "propertyChangeType": "Array", "children": children}]
    if _same(before, after, path):
        return []
    return [{"path": path, "propertyChangeType": "Modify", "before": before, "after": after}]
