// The Cortex-M4/M7 int8 matmul: depth-contiguous operands (lhs rows, rhs rows as Kᵀ) read by
// words, widened with SXTB16 (UXTB16 for the unsigned lhs), two MACs per SMLAD into a 2x2 block
// of registers; the depth's remainder (9 = 2 x 4 + 1) by scalar MACs; odd rows and columns by the
// same code with fewer accumulators.
// RUN: %tinyattn-opt %s --convert-kernels-to-loops="target=thumbv7em" | %filecheck %s
// RUN: %tinyattn-opt %s --convert-kernels-to-loops="target=thumbv7em" --print-op-generic | %mlir-opt %upstream-flags-32 | %mlir-translate --mlir-to-llvmir | %opt-cortex-m4 | %llc-cortex-m4 -filetype=obj -o %t.o
// RUN: %llvm-objdump -d %t.o | %filecheck %s --check-prefix=ASM
// A matmul it does not apply to (rhs not transposed) keeps the generic loops.
// RUN: %tinyattn-opt %s --convert-kernels-to-loops="target=thumbv7em" | %filecheck %s --check-prefix=GENERIC
// REQUIRES: mlir, codegen

// CHECK-LABEL: func.func @scores
// CHECK:         scf.for {{.*}} iter_args(%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}) -> (i32, i32, i32, i32) {
// CHECK:           llvm.call_intrinsic "llvm.arm.uxtb16"
// CHECK:           llvm.call_intrinsic "llvm.arm.sxtb16"
// CHECK-COUNT-8:   llvm.call_intrinsic "llvm.arm.smlad"
// CHECK:           scf.yield
// CHECK:         arith.muli {{.*}} : i32
// CHECK:         arith.shrsi
// CHECK-NOT:     kernel.matmul
func.func @scores(%q: memref<5x9xi8>, %k: memref<7x9xi8>, %b: memref<7xi32>, %s: memref<5x7xi8>) {
  kernel.matmul %q, %k bias %b into %s {transpose_rhs, unsigned = array<i64: 0>, requant = #tinyattn.requant<mul = [3, 5, 7, 9, 11, 13, 15], add = 0, shift = 9>} : memref<5x9xi8>, memref<7x9xi8> bias memref<7xi32> into memref<5x7xi8>
  func.return
}

// GENERIC-LABEL: func.func @projection
// GENERIC-NOT:   llvm.call_intrinsic
// GENERIC:       memref.load
// GENERIC-NOT:   llvm.call_intrinsic
func.func @projection(%x: memref<4x8xi8>, %w: memref<8x3xi8>, %y: memref<4x3xi32>) {
  kernel.matmul %x, %w into %y : memref<4x8xi8>, memref<8x3xi8> into memref<4x3xi32>
  func.return
}

// ASM-LABEL: <scores>:
// ASM:       ldr
// ASM:       sxtb16
// ASM:       smlad
