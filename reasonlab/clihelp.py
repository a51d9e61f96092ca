"""Help for the commands whose settings are a config dataclass, generated from it.

A command names its config class (`config_command("reasonlab.rl.config:GRPOConfig")`); when help
is shown, each option that is a field of the class gets the field's help text, and every other
field is listed as a `key=value` setting with its help and default. So a setting's help is
written once, in the dataclass, and `reasonlab --help` stays fast: the config module (which may
import torch) is imported only when a command's help is asked for.
"""

from __future__ import annotations

import dataclasses
import importlib

from typer.core import TyperCommand


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


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class ConfigCommand(TyperCommand):
    """A typer command whose help comes from its config dataclass (see the module docstring)."""

    config = ""  # "module:Class"

    def format_help(self, ctx, formatter) -> None:
        known = settings(config_class(self.config))
        for p in self.params:  # typer's own click: an option is told by its type name
            if getattr(p, "param_type_name", "") == "option" and not getattr(p, "help", None) and p.name in known:
                p.help = _escape(known[p.name][0])
        named = {p.name for p in self.params}
        rest = [f"  {k}: {_escape(h)} (default {d!r})" for k, (h, d) in known.items() if k not in named]
        if rest:
            self.epilog = "\n\n".join([f"Settings as key=value ({self.config.split(':')[1]}):", *rest])
        super().format_help(ctx, formatter)


def config_command(path: str) -> type[ConfigCommand]:
    """The command class for a config dataclass at `module:Class`."""
    return type(f"{path.split(':')[1]}Command", (ConfigCommand,), {"config": path})
