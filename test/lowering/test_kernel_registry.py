"""The per-target kernel hook: a target's registered lowering replaces the generic loop nest
exactly where its predicate holds, and the generic loops serve everything else (that they
compute what the kernel ops mean is test/semantics' loop-level stages)."""

from __future__ import annotations

import pytest
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, StringAttr

from tinyattn.dialects import kernel
from tinyattn.driver.parsing import parse_module
from tinyattn.lowering import convert_kernels_to_loops as ckl
from tinyattn.lowering import kernel_registry as registry

MODULE = """
func.func @main(%x: memref<2x3xf32>, %w: memref<3x4xf32>, %xi: memref<2x3xi8>, %wi: memref<3x4xi8>, %y: memref<2x4xf32>, %yi: memref<2x4xi32>) {
  kernel.matmul %x, %w into %y : memref<2x3xf32>, memref<3x4xf32> into memref<2x4xf32>
  kernel.matmul %xi, %wi into %yi : memref<2x3xi8>, memref<3x4xi8> into memref<2x4xi32>
  func.return
}
"""


@pytest.fixture
def marked_f32_matmul(monkeypatch):
    """An rv32 lowering of f32 matmuls that leaves a mark, then emits the generic loops."""
    monkeypatch.setitem(registry._TARGET_KERNELS, "rv32", [])

    @registry.register_kernel("rv32", kernel.MatmulOp, applies=lambda op: not op.is_integer())
    def marked(ctx: registry.KernelContext, op: kernel.KernelOp) -> None:
        ctx.builder.insert(func.CallOp("rv32_f32_matmul_was_here", [], []))
        ckl.GENERIC_KERNELS[kernel.MatmulOp](ctx, op)


def _lowered(target: str) -> ModuleOp:
    module = parse_module(MODULE, "registry.mlir")
    ckl.ConvertKernelsToLoops(target=target).apply(Context(), module)
    return module


def _marks(module: ModuleOp) -> int:
    return sum(
        isinstance(op, func.CallOp)
        and op.callee.root_reference == StringAttr("rv32_f32_matmul_was_here")
        for op in module.walk()
    )


def test_a_registered_kernel_applies_where_its_predicate_holds(marked_f32_matmul):
    module = _lowered("rv32")
    assert _marks(module) == 1  # the f32 matmul; the int8 one fell back to the generic loops
    assert not any(isinstance(op, kernel.KernelOp) for op in module.walk())


def test_other_targets_use_the_generic_loops(marked_f32_matmul):
    for target in ("generic", "thumbv7em", "gap9"):
        assert _marks(_lowered(target)) == 0


def test_registering_for_an_unknown_target_is_refused():
    with pytest.raises(ValueError, match="unknown kernel target 'avr'"):
        registry.register_kernel("avr", kernel.MatmulOp)
