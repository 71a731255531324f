"""Commands as typed messages: each command is one frozen model, declared once in its
aggregate's room: beside the payloads it leads to (`model_commands.py` beside
`model_payloads.py`), or with the aggregate's state and decisions where the aggregate
has a room of its own (`ledgerflow.services.deployments.commands`).

A command class carries its fields with their wire validation (the same types the
REST body has always had), and, as class-level metadata, how it travels:

- `HTTP`: the REST route that carries it (method, path template under `/api/v1`
  whose placeholders name fields, which fields ride in the query string, whether the
  body may be left out or is one field's value, the success status, the summary);
- `ANSWER`: how its result is written to JSON and read back (and the response
  model the OpenAPI document shows).

Everything else follows from the class, in one place per concern:

- the service's `execute(command, *, actor)` dispatches it to its handler
  (`ledgerflow.services.commands.Handlers`), which reads the state, calls the pure
  decide function and commits the events;
- the gateway registers one route per command class from `HTTP`, parses the body
  into the command's own fields and merges the path and query parameters
  (`ledgerflow.services.gateway.command_routes`);
- the remote backend serialises the same model to that method and path
  (`ledgerflow.remote.commands`);
- the Client and the fluent functions keep their MLflow-style signatures and only
  build the command.

So adding a command is one model here, one decide function, one handler; its REST
route and its remote call come with it. Semantic checks that need the state or the
registry (a variant's model version exists, a weight is finite...) stay in the decide
functions and handlers, so they fail with the same message in every mode.

Built by hand (the Client edge), an invalid command raises `InvalidInput` naming the
field the way the gateway names it for a bad body (`variants.0`, `weights`), never a
pydantic `ValidationError`.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, ClassVar, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator
from pydantic_core import ErrorDetails

from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.field_schemas import KEY, stated
from ledgerflow.events.permissions import Level

R = TypeVar("R")
Method = Literal["POST", "PUT", "PATCH", "DELETE"]


def _text(value: object) -> object:
    return value if isinstance(value, str) else str(value)


AsText = Annotated[str, BeforeValidator(_text, json_schema_input_type=Any)]
"""A tag value: any value, kept as its text (`str(value)`), as tags are stored; made text
where the command is built, so every mode stores the same text for a number or a date."""
Tags = Annotated[dict[str, AsText], stated(propertyNames=KEY)] | None


def dotted(loc: Sequence[int | str]) -> str:
    """('params', 'lr') -> 'params.lr'."""
    return ".".join(str(x) for x in loc)


def invalid_input(
    errors: Sequence[ErrorDetails], field_of: Callable[[tuple[int | str, ...]], str] = dotted
) -> InvalidInput:
    """The first validation error as `InvalidInput` naming its field, saying how many more
    there were: the one error shape for a bad body and a bad hand-built command."""
    first = errors[0]
    field = field_of(tuple(first.get("loc", ())))
    message = f"{field}: {first.get('msg', 'invalid')}" if field else first.get("msg", "")
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return InvalidInput(message, field=field or None)


@dataclass(frozen=True)
class Http:
    """How a command travels over REST. Placeholders in `path` (`{name}`) are filled
    from the fields of the same name; `query` fields go in the query string; the
    remaining fields make the JSON body (or, with `body_field`, that one field's value is
    the whole body)."""

    method: Method
    path: str
    summary: str
    status: int = 200
    query: tuple[str, ...] = ()
    optional_body: bool = False
    """The body may be left out: the fields take their defaults."""
    body_field: str | None = None
    idempotent: bool | None = None
    """Whether the remote client may resend it after a lost answer (None: by method)."""

    @property
    def path_fields(self) -> tuple[str, ...]:
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.path) if f)

    def body_fields(self, fields: Sequence[str]) -> tuple[str, ...]:
        """The fields that travel in the body, in declaration order."""
        elsewhere = {*self.path_fields, *self.query}
        return tuple(f for f in fields if f not in elsewhere)


Scope = Literal["resource", "admin", "anyone", "self"]


class Lookup(Protocol):
    """What a `Names` may read of the current state, for a resource a command reaches
    through its own (the model a deployment's variant serves)."""

    def variant_model(self, deployment: str, variant: str) -> str | None: ...


@dataclass(frozen=True)
class Names:
    """Another resource a command's payload names besides its own (the models a
    deployment's variants serve, the run a model version comes from): the caller needs
    `level` on each key `keys` reads from the command, or the command could reach through
    it to what they may not see. `keys` skips what is malformed: the command's own checks
    refuse that, with the field it names."""

    kind: str
    keys: Callable[[Any, Lookup], Iterable[str]]
    what: str
    """Where the keys come from, for the docs (`every variant's model`)."""
    level: Level = Level.READ

    def describe(self) -> str:
        return f"{self.level.name} on {self.what}"


@dataclass(frozen=True)
class Need:
    """What a caller must hold to run a command when auth is on (docs/security.md):

    - `on(kind, field, level)`: `level` on the resource whose key is the command's `field`
      (`kind` "run" means the run's experiment); a `kind` of "@field" reads the kind from
      that field of the command (granting on any kind of resource);
    - `ADMIN`: an admin; `ANYONE`: any identity (creating a new experiment or model);
    - `self_or_admin(field)`: the user the field names (the caller when it is empty), or
      an admin;
    - `.plus(Names(...))`: and the level on every other resource the payload names
      (checked once the body is read, on every way a command arrives).
    """

    scope: Scope
    kind: str = ""
    field: str = ""
    level: Level = Level.READ
    or_new: bool = False
    """Any identity may when the resource does not exist yet (the command creates it, and
    its caller becomes its creator: registering the first version of a new model)."""
    also: tuple[Names, ...] = ()
    """The other resources the payload names, each checked besides this need."""

    def plus(self, *names: Names) -> Need:
        return replace(self, also=(*self.also, *names))

    def resource(self, command: BaseModel) -> tuple[str, str]:
        """(kind, key) of the resource this need is on, read from `command`."""
        kind = str(getattr(command, self.kind[1:])) if self.kind.startswith("@") else self.kind
        return kind, str(getattr(command, self.field))

    def describe(self) -> str:
        return " and ".join((self._describe_own(), *(n.describe() for n in self.also)))

    def _describe_own(self) -> str:
        if self.scope == "resource":
            return f"{self.level.name} on the {self.kind.lstrip('@')} named by `{self.field}`"
        if self.scope == "self":
            return f"the user named by `{self.field}` (or the caller), or an admin"
        return {"admin": "an admin", "anyone": "any identity"}[self.scope]


def on(kind: str, field: str, level: Level, *, or_new: bool = False) -> Need:
    return Need("resource", kind, field, level, or_new)


def self_or_admin(field: str) -> Need:
    return Need("self", field=field)


ADMIN = Need("admin")
ANYONE = Need("anyone")


@dataclass(frozen=True)
class Answer(Generic[R]):
    """A command's result on the wire: `encode` for the gateway's answer (a JSON-ready
    value, or an instance of `schema`), `decode` for the remote client."""

    encode: Callable[[R], Any]
    decode: Callable[[Any], R]
    schema: Any = None
    """The response model the OpenAPI document shows (None: no body)."""


def _nothing(_: object) -> None:
    return None


NOTHING: Answer[None] = Answer(_nothing, _nothing)
"""For commands that answer `204 No Content`."""


class Command(BaseModel, Generic[R]):
    """Base of every command; `R` is what executing it returns."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")
    HTTP: ClassVar[Http | None] = None
    """None: not exposed over REST (commands of the services' own loops)."""
    NEEDS: ClassVar[Need | None] = None
    """What the caller must hold when auth is on; a command with `HTTP` must say."""
    ANSWER: ClassVar[Answer[Any]] = NOTHING

    @model_validator(mode="wrap")
    @classmethod
    def _as_invalid_input(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(data)
        except ValidationError as e:
            raise invalid_input(e.errors()) from None
