"""Command-line options generated from a command's config dataclass.

A command names its config class and the fields it offers as named options
(`config_command("reasonlab.rl.config:GRPOConfig", "model", "task", "steps", "out")`). The options
are built from the dataclass when the command is parsed or its help is shown: each takes the
field's type and help text (`--max-new-tokens` for `max_new_tokens`, a `--name` switch for a bool),
defaults to "not given", and reaches the command as `given(ctx)`, a dict of the options given. Every
other field is listed in the help as a `key=value` setting with its help and default. So a setting
is written once, in the dataclass, and `reasonlab --help` stays fast: a config module (which may
import torch) is imported only when one of its commands runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import types
import typing

from typer.core import TyperCommand

#: `ctx.meta` key under which a command finds the options it was given
GIVEN = "reasonlab.given"


def config_class(path: str) -> type:
    """`module:Class` → the class."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def settings(cls: type, prefix: str = "") -> dict[str, tuple[str, object]]:
    """Every setting of a config dataclass, nested ones dotted: name → (help, default).

    >>> from reasonlab.cost import Prices
    >>> @dataclasses.dataclass
    ... class C:
    ...     lr: float = dataclasses.field(default=0.1, metadata={"help": "learning rate"})
    ...     prices: Prices = dataclasses.field(default_factory=Prices, metadata={"help": "prices"})
    >>> s = settings(C)
    >>> s["lr"], "prices.gpu_hour_usd" in s
    (('learning rate', 0.1), True)
    """
    out: dict[str, tuple[str, object]] = {}
    for f in dataclasses.fields(cls):
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if dataclasses.is_dataclass(default):
            out.update(settings(type(default), f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = (f.metadata.get("help", ""), default)
    return out


def _annotation(hint) -> object:
    """The option type of a field's annotation, "not given" allowed: `int` → `int | None`;
    anything but a number, bool or string is text, typed later by the config loader like a
    recipe's value."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else str
    return typing.Optional[hint if hint in (int, float, bool, str) else str]  # noqa: UP045 (built at runtime)


def field_options(cls: type, names: tuple[str, ...]) -> list:
    """Named options for fields `names` of dataclass `cls`, built by typer itself from a generated
    signature: each with the field's type and help, default "not given" (None).

    >>> @dataclasses.dataclass
    ... class C:
    ...     max_new_tokens: int = dataclasses.field(default=64, metadata={"help": "cap"})
    ...     resume: bool = dataclasses.field(default=False, metadata={"help": "go on"})
    >>> o, r = field_options(C, ("max_new_tokens", "resume"))
    >>> o.opts, o.help, o.default, r.opts, r.secondary_opts
    (['--max-new-tokens'], 'cap (default 64)', None, ['--resume'], ['--no-resume'])
    """
    import typer

    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    params = []
    for name in names:
        if name not in fields:
            raise TypeError(f"{cls.__name__} has no field {name!r}")
        f = fields[name]
        default = f.default if f.default is not dataclasses.MISSING else None
        text = _escape(f.metadata.get("help", "")) + (f" (default {default!r})" if not (default is None or default == "" or default is False) else "")
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=_annotation(hints[name]),
                                        default=typer.Option(None, help=text)))

    def options(**_):  # only its signature is read
        pass

    options.__signature__ = inspect.Signature(params)
    one = typer.Typer(add_completion=False)
    one.command()(options)
    return list(typer.main.get_command(one).params)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class ConfigCommand(TyperCommand):
    """A typer command with options generated from its config dataclass (see the module docstring)."""

    config = ""  # "module:Class"
    fields: tuple[str, ...] = ()  # the fields offered as named options

    def get_params(self, ctx):
        if not getattr(self, "_generated", False):
            cls = config_class(self.config)
            self.params = [*field_options(cls, self.fields), *self.params]
            self._generated = True
        return super().get_params(ctx)

    def invoke(self, ctx):
        values = {n: ctx.params.pop(n, None) for n in self.fields}  # the callback declares none of them
        ctx.meta[GIVEN] = {n: v for n, v in values.items() if v is not None}
        return super().invoke(ctx)

    def format_help(self, ctx, formatter) -> None:
        named = {p.name for p in self.get_params(ctx)}
        rest = [f"  {k}: {_escape(h)} (default {d!r})" for k, (h, d) in settings(config_class(self.config)).items()
                if k not in named]
        if rest:
            self.epilog = "\n\n".join([f"Settings as key=value ({self.config.split(':')[1]}):", *rest])
        super().format_help(ctx, formatter)


def config_command(path: str, *fields: str) -> type[ConfigCommand]:
    """The command class for a config dataclass at `module:Class`, offering `fields` as options."""
    return type(f"{path.split(':')[1]}Command", (ConfigCommand,), {"config": path, "fields": fields})


def given(ctx) -> dict:
    """The generated options a command was given (field name → value)."""
    return dict(ctx.meta.get(GIVEN, {}))
