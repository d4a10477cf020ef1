"""Taps: named forward hooks that store module outputs and can stop the UNet early.

Hooks are installed the diffusers way: one hook class (:class:`TapHook`), registered on a
module under a constant name (:data:`HOOK_NAME`) and removed by that name, so several
extractors can share one backbone. Truncation follows DIFT: the hook of the last tap to fire
raises a private exception that :func:`run_until_taps` catches, so no UNet forward is
re-implemented and any diffusers version works (``backbones.md`` section 8.1).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from satdifuser.errors import ConfigError

HOOK_NAME = "satdifuser_tap"
"""Name every tap hook is registered under (``module._satdifuser_hooks[HOOK_NAME]``)."""

_HOOKS_ATTR = "_satdifuser_hooks"


class _StopForward(Exception):
    """Raised by the last tap to end the UNet forward early (never escapes this module)."""


class TapHook:
    """Forward hook storing a module's output under its qualified name.

    Args:
        name: Qualified module name (the key in ``store``).
        store: Dict receiving ``name -> output``.
        stop: Raise after storing, ending the forward (truncation).
    """

    def __init__(self, name: str, store: dict[str, Tensor], stop: bool = False) -> None:
        self.name = name
        self.store = store
        self.stop = stop

    def __call__(self, module: nn.Module, args: Any, output: Any) -> None:
        if not isinstance(output, Tensor):
            output = output[
                0
            ]  # down blocks return (hidden, res_samples); outputs index like tuples
        self.store[self.name] = output
        if self.stop:
            raise _StopForward


def register_hook(module: nn.Module, hook: TapHook, name: str = HOOK_NAME) -> None:
    """Register ``hook`` on ``module`` under ``name`` (replacing one of the same name)."""
    remove_hook(module, name)
    handles: dict[str, RemovableHandle] = module.__dict__.setdefault(_HOOKS_ATTR, {})
    handles[name] = module.register_forward_hook(hook)


def remove_hook(module: nn.Module, name: str = HOOK_NAME) -> None:
    """Remove the hook registered on ``module`` under ``name`` (no-op when absent)."""
    handles: dict[str, RemovableHandle] = module.__dict__.get(_HOOKS_ATTR, {})
    handle = handles.pop(name, None)
    if handle is not None:
        handle.remove()


def resolve_taps(model: nn.Module, patterns: Sequence[str]) -> list[str]:
    """Expand tap patterns to qualified module names.

    ``fnmatch`` patterns (case-sensitive) on qualified names; ``*`` may span several parts
    (``up_blocks.*.attn1``). A pattern selects its outermost matches only: ``down_blocks.*``
    gives the four block outputs, not every module inside them. Names are returned per pattern in
    module order, without duplicates.

    Raises:
        ConfigError: a pattern matches no module.
    """
    names = [n for n, _ in model.named_modules() if n]
    out: list[str] = []
    for pattern in patterns:
        matched = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        outer = [n for n in matched if not any(n.startswith(m + ".") for m in matched)]
        if not outer:
            examples = ", ".join(
                n for n in names if n.endswith(("attn1", "conv2")) or n.count(".") == 1
            )
            raise ConfigError(
                f"tap pattern {pattern!r} matches no module of this UNet; use qualified module "
                f"names or fnmatch patterns such as up_blocks.*.attn1, up_blocks.1, mid_block "
                f"(modules include: {examples[:300]}...)"
            )
        out += [n for n in outer if n not in out]
    return out


@contextmanager
def installed_taps(
    model: nn.Module, names: Sequence[str], stop_after: str | None = None
) -> Iterator[dict[str, Tensor]]:
    """Install tap hooks on ``names`` for the duration of the block; yields the output store.

    Args:
        model: The UNet.
        names: Qualified module names to tap.
        stop_after: Tap whose hook ends the forward (the last one to fire), or None.
    """
    store: dict[str, Tensor] = {}
    modules = dict(model.named_modules())
    try:
        for name in names:
            register_hook(modules[name], TapHook(name, store, stop=name == stop_after))
        yield store
    finally:
        for name in names:
            remove_hook(modules[name])


def run_until_taps(fn: Callable[[], Any]) -> Any:
    """Call ``fn``; return its result, or None when a tap stopped it early."""
    try:
        return fn()
    except _StopForward:
        return None


def latent_sizes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """Spatial sizes of the UNet's resolution levels (stride-2 convs with padding 1 round up)."""
    sizes = [(height, width)]
    for _ in range(levels):
        h, w = sizes[-1]
        sizes.append((math.ceil(h / 2), math.ceil(w / 2)))
    return sizes


def to_map(output: Tensor, sizes: Sequence[tuple[int, int]]) -> Tensor:
    """A tap output as a (B, C, H, W) map.

    Token outputs (B, HW, C) (transformer ``attn1``/``attn2``) are reshaped with the level size
    whose H*W equals the token count, so non-square maps work.
    """
    if output.ndim == 4:
        return output
    if output.ndim == 3:
        tokens = output.shape[1]
        for h, w in sizes:
            if h * w == tokens:
                return output.transpose(1, 2).reshape(output.shape[0], output.shape[2], h, w)
        raise ConfigError(
            f"a tap returned {tokens} tokens, which matches no UNet level size {list(sizes)}; "
            "tap a module with a spatial output"
        )
    raise ConfigError(
        f"a tap returned a tensor of shape {tuple(output.shape)}; only (B, C, H, W) and "
        "(B, HW, C) outputs can be tapped"
    )


__all__ = [
    "HOOK_NAME",
    "TapHook",
    "installed_taps",
    "latent_sizes",
    "register_hook",
    "remove_hook",
    "resolve_taps",
    "run_until_taps",
    "to_map",
]
