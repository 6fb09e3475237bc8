"""GraphQL layer: schemas from the SDL files with resolvers and complexity costs attached, validation
with graphql-php wording, variable coercion, and execution (spec §3.4, §4)."""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from graphql import GraphQLError, GraphQLSyntaxError, Undefined, build_schema, default_field_resolver, execute, parse
from graphql.language import OperationDefinitionNode, FragmentDefinitionNode, print_ast
from graphql.type import (GraphQLEnumType, GraphQLInputObjectType, GraphQLList, GraphQLNonNull,
                          GraphQLScalarType, is_input_type)
from graphql.utilities import type_from_ast

from . import jobs, scalars
from .limits import COSTED_TYPES, ROOT_MUTATION_COST, ROOT_QUERY_COST, query_depth
from .resolvers import ROOT_RESOLVERS, TYPE_RESOLVERS, Context

SCHEMA_DIR = Path(__file__).parent / "schema"
# The real plugin's schema file: the simulator offers exactly the operations a site with the plugin has.
ESRSYNC_SDL = Path(__file__).resolve().parents[2] / "totara" / "local_esrsync" / "webapi" / "external" / "local_esrsync.graphqls"
INTROSPECTION_OFF = "GraphQL introspection is not enabled."


def _costed(resolve, points: int):
    resolve = resolve or default_field_resolver

    def wrapper(source, info, **args):
        info.context.charge(points, info)
        return resolve(source, info, **args)
    return wrapper


def _text_default(source, info, **args):
    # Text fields take a `format` argument; the stored value is returned as is.
    return source.get(info.field_name) if isinstance(source, dict) else getattr(source, info.field_name, None)


def build(with_esrsync: bool):
    sdl = (SCHEMA_DIR / "core.graphql").read_text(encoding="utf-8")
    if with_esrsync:
        sdl += "\n" + ESRSYNC_SDL.read_text(encoding="utf-8")
    schema = build_schema(sdl)
    scalars.install(schema)
    for type_name, cost in (("Query", ROOT_QUERY_COST), ("Mutation", ROOT_MUTATION_COST)):
        roots = {**ROOT_RESOLVERS[type_name], **jobs.ROOT_RESOLVERS[type_name]}
        for name, fld in schema.type_map[type_name].fields.items():
            fld.resolve = _costed(roots[name], cost)
    type_resolvers = {name: {**TYPE_RESOLVERS.get(name, {}), **jobs.TYPE_RESOLVERS.get(name, {})}
                      for name in (*TYPE_RESOLVERS, *jobs.TYPE_RESOLVERS)}
    for type_name, resolvers in type_resolvers.items():
        if type_name in schema.type_map:
            for name, fld in schema.type_map[type_name].fields.items():
                fld.resolve = resolvers.get(name) or (_text_default if fld.args else None)
    for type_name in COSTED_TYPES:
        if type_name in schema.type_map:
            for fld in schema.type_map[type_name].fields.values():
                fld.resolve = _costed(fld.resolve, 1)
    return schema


# --------------------------------------------------------------------------------------------------
# graphql-php wording (§3.4)
# --------------------------------------------------------------------------------------------------

_REWRITES = [
    (re.compile(r"^Argument '(\w+)\.(\w+)\((\w+):\)' of type '(.+?)' is required, but it was not provided\.$"),
     lambda m: f'Field "{m[2]}" argument "{m[3]}" of type "{m[4]}" is required but not provided.'),
    (re.compile(r"^Unknown argument '(\w+)' on field '(\w+)\.(\w+)'\.(.*)$"),
     lambda m: f'Unknown argument "{m[1]}" on field "{m[3]}" of type "{m[2]}".' + _dq(m[4])),
    (re.compile(r"^Expected value of type '(.+?)', but encountered error '(.*)'; found: (.*?)\.?$"),
     lambda m: f"Expected type {m[1]}, found {_dq(m[3])}; {m[2]}"),
    (re.compile(r"^Expected value of type '(.+?)', found (.*?)(; (.*))?$"),
     lambda m: f"Expected type {m[1]}, found {_dq(m[2])}" + (f"; {m[4]}" if m[3] else ".")),
    (re.compile(r"^Field '(\w+)' must not have a selection since type '(.+?)' has no subfields\.$"),
     lambda m: f'Field "{m[1]}" must not have a selection since type "{m[2]}" has no subfields.'),
    (re.compile(r"^Field '(\w+)' of type '(.+?)' must have a selection of subfields\..*$"),
     lambda m: f'Field "{m[1]}" of type "{m[2]}" must have a sub selection.'),
]


def argument_error(err: GraphQLError, document) -> tuple[str, list] | None:
    """graphql-php's wording and location for an argument failing at execution (there is no validation step on
    Totara's external endpoint): 'Argument "x" of required type "T!" was not provided.' at the field, or
    'Argument "x" has invalid value {literal}.' at the argument's value. None for any other error."""
    inner = err.original_error if isinstance(err.original_error, GraphQLError) else err
    if not inner.message.startswith("Argument '") or not err.path:
        return None
    if " was not provided." in inner.message:
        return _dq(inner.message), err.locations or []
    m = re.match(r"^Argument '(\w+)' has invalid value", inner.message)
    if not m:
        return None
    from graphql.language import FieldNode, visit, Visitor

    found = []

    class Finder(Visitor):
        def enter_field(self, node: FieldNode, *_):
            key = node.alias.value if node.alias else node.name.value
            if key == err.path[-1]:
                found.extend(a.value for a in node.arguments if a.name.value == m[1])

    visit(document, Finder())
    if not found:
        return None
    literal = print_ast(found[0]).replace("{ ", "{").replace(" }", "}")  # graphql-php prints objects tight
    return f'Argument "{m[1]}" has invalid value {literal}.', [found[0].loc.source.get_location(
        found[0].loc.start)]


def prune_unknown_input_fields(schema, document):
    """graphql-php ignores fields of an input-object literal that its type does not define; graphql-core refuses
    them. Remove them before execution so the simulator answers as Totara does."""
    from graphql.language import REMOVE, Visitor, visit
    from graphql.utilities import TypeInfo, TypeInfoVisitor

    type_info = TypeInfo(schema)

    class Pruner(Visitor):
        def enter_object_field(self, node, *_):
            parent = type_info.get_parent_input_type()
            if isinstance(parent, GraphQLInputObjectType) and node.name.value not in parent.fields:
                return REMOVE
            return None

    return visit(document, TypeInfoVisitor(type_info, Pruner()))


def _dq(text: str) -> str:
    return re.sub(r"'([^']*)'", r'"\1"', text)


def php_wording(message: str) -> str:
    """Map graphql-core's wording to graphql-php 14's (double quotes, a few reworded rules)."""
    if message.startswith("Syntax Error: "):
        return message.rstrip(".")
    for pattern, repl in _REWRITES:
        m = pattern.match(message)
        if m:
            return repl(m)
    return _dq(message)


def _php_json(value) -> str:
    """PHP json_encode defaults: compact, ASCII-only, escaped slashes."""
    return json.dumps(value, separators=(",", ":")).replace("/", "\\/")


class _Coercion(Exception):
    def __init__(self, message: str, internal: bool = False):
        super().__init__(message)
        # A Totara param_* scalar refused the value (invalid_parameter_exception): the real site answers with
        # category internal and the text in debugMessage, not category graphql.
        self.internal = internal


def _has_default(fld) -> bool:
    # graphql-core 3.3 keeps SDL defaults in `default`; older versions in `default_value`.
    if getattr(fld, "default", None) is not None:
        return True
    return fld.default_value not in (None, Undefined)


def _coerce(value, gtype, path: list) -> None:
    """Check a variable value the way graphql-php 14's Value::coerceValue words its errors."""
    at = (" at value" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)) if path else ""
    if isinstance(gtype, GraphQLNonNull):
        if value is None:
            raise _Coercion(f"Expected non-nullable type {gtype} not to be null{at}.")
        return _coerce(value, gtype.of_type, path)
    if value is None:
        return
    if isinstance(gtype, GraphQLScalarType):
        try:
            gtype.parse_value(value)
        except Exception as err:  # noqa: BLE001 - any parser failure is a coercion error
            sub = php_wording(getattr(err, "message", None) or str(err))
            raise _Coercion(f"Expected type {gtype.name}{at}" + (f"; {sub}" if sub else "."),
                            internal=sub == "Invalid parameter value detected")
        return
    if isinstance(gtype, GraphQLEnumType):
        if not isinstance(value, str) or value not in gtype.values:
            raise _Coercion(f"Expected type {gtype.name}{at}.")
        return
    if isinstance(gtype, GraphQLList):
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            _coerce(item, gtype.of_type, path + [i] if isinstance(value, list) else path)
        return
    if isinstance(gtype, GraphQLInputObjectType):
        if not isinstance(value, dict):
            raise _Coercion(f"Expected type {gtype.name} to be an object{at}.")
        for name in value:
            if name not in gtype.fields:
                raise _Coercion(f'Field "{name}" is not defined by type {gtype.name}{at}.')
        for name, fld in gtype.fields.items():
            if name in value:
                _coerce(value[name], fld.type, path + [name])
            elif isinstance(fld.type, GraphQLNonNull) and not _has_default(fld):
                field_path = "value" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path + [name])
                raise _Coercion(f"Field {field_path} of required type {fld.type} was not provided.")


def variable_errors(schema, operation: OperationDefinitionNode, variables: dict) -> list[GraphQLError]:
    errors = []
    for vd in operation.variable_definitions or ():
        name = vd.variable.name.value
        vtype = type_from_ast(schema, vd.type)
        if vtype is None:
            named = vd.type
            while not hasattr(named, "name") or named.name is None:
                named = named.type
            return [GraphQLError(f'Type "{named.name.value}" not found in document.')]
        if not is_input_type(vtype):
            continue
        if name not in variables:
            if vd.default_value is None and isinstance(vtype, GraphQLNonNull):
                errors.append(GraphQLError(f'Variable "${name}" of required type "{print_ast(vd.type)}" was not '
                                           f'provided.', vd))
            continue
        value = variables[name]
        if value is None and isinstance(vtype, GraphQLNonNull):
            errors.append(GraphQLError(f'Variable "${name}" of non-null type "{print_ast(vd.type)}" must not be '
                                       f'null.', vd))
            continue
        try:
            _coerce(value, vtype, [])
        except _Coercion as err:
            errors.append(GraphQLError(f'Variable "${name}" got invalid value {_php_json(value)}; {err}', vd,
                                       extensions={"totara_category": "internal"} if err.internal else None))
    return errors


def _introspection_errors(document) -> list[GraphQLError]:
    from graphql.language import Visitor, visit

    found = []

    class Finder(Visitor):
        def enter_field(self, node, *_):
            if node.name.value in ("__schema", "__type"):
                found.append(GraphQLError(INTROSPECTION_OFF, node))

    visit(document, Finder())
    return found


# --------------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------------

@dataclass
class Prepared:
    document: object = None
    errors: list = field(default_factory=list)
    operations: dict = field(default_factory=dict)


class Engine:
    """Two schemas (with and without local_esrsync) and a cache of parsed + validated documents."""

    def __init__(self):
        self.schemas = {True: build(True), False: build(False)}
        self._cache: dict = {}
        self._lock = threading.Lock()

    def prepare(self, query: str, esrsync: bool, max_depth: int, introspection: bool) -> Prepared:
        key = (query, esrsync, max_depth, introspection)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        prepared = Prepared()
        try:
            document = parse(query)
        except GraphQLSyntaxError as err:
            prepared.errors = [err]
            return prepared
        schema = self.schemas[esrsync]
        document = prune_unknown_input_fields(schema, document)
        # Totara's external endpoint runs no standard validation rule, only its depth limit and the introspection
        # switch: a field or argument the schema does not have is silently left out (seen on a real 17.3 site).
        errors = [] if introspection else _introspection_errors(document)
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        for d in document.definitions:
            if isinstance(d, OperationDefinitionNode):
                prepared.operations[d.name.value if d.name else None] = d
                depth = query_depth(d, fragments)
                if depth > max_depth:
                    errors.append(GraphQLError(f"Max query depth should be {max_depth} but got {depth}."))
        prepared.document, prepared.errors = document, errors
        with self._lock:
            if len(self._cache) > 500:
                self._cache.clear()
            self._cache[key] = prepared
        return prepared

    def run(self, prepared: Prepared, esrsync: bool, variables: dict, operation_name: str | None, ctx: Context):
        """Execute; returns (data, errors) where errors are graphql-core errors (complexity first if any)."""
        schema = self.schemas[esrsync]
        ops = prepared.operations
        operation = ops.get(operation_name) if operation_name else (next(iter(ops.values())) if len(ops) == 1 else None)
        if operation is None:
            msg = (f'Unknown operation named "{operation_name}".' if operation_name
                   else "Must provide operation name if query contains multiple operations.")
            return None, [GraphQLError(msg)]
        coercion = variable_errors(schema, operation, variables)
        if coercion:
            return None, coercion
        ctx.is_mutation = operation.operation.value == "mutation"
        result = execute(schema, prepared.document, context_value=ctx, variable_values=variables,
                         operation_name=operation_name)
        if ctx.complexity_error is not None:
            return None, [ctx.complexity_error]
        return result.data, list(result.errors or [])
