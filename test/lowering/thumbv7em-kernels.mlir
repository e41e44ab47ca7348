// The Cortex-M4/M7 int8 matmul: depth-contiguous operands (lhs rows, rhs rows as Kᵀ) are copied
// once to one stack buffer as their SXTB16 pairs (UXTB16 for the unsigned lhs): a panel of rhs
// rows (here all 7), then each block of 4 lhs rows. A 4x2 block of registers then takes one
// SMLAD (two MACs) per pair of each operand, the 4 pairs of a depth of 9 unrolled (no loop), the
// last position by scalar MACs, the requant once per output; odd rows and columns by the same
// code with fewer accumulators.
// RUN: %tinyattn-opt %s --convert-kernels-to-loops="target=thumbv7em" | %filecheck %s
// RUN: %tinyattn-opt %s --convert-kernels-to-loops="target=thumbv7em" --print-op-generic | %mlir-opt %upstream-flags-32 | %mlir-translate --mlir-to-llvmir | %opt-cortex-m4 | %llc-cortex-m4 -filetype=obj -o %t.o
// RUN: %llvm-objdump -d %t.o | %filecheck %s --check-prefix=ASM
// A matmul whose rhs is read across its rows (not transposed) takes 4x2 blocks of scalar MACs.
// RUN: %tinyattn-opt %s --convert-kernels-to-loops="target=thumbv7em" | %filecheck %s --check-prefix=GENERIC
// REQUIRES: mlir, codegen

// CHECK-LABEL: func.func @scores
// CHECK-NEXT:    %[[STACK:.*]] = memref.alloca() : memref<44xi32>
// CHECK-NEXT:    %[[ROWS:.*]] = memref.subview %[[STACK]][0] [16] [1]
// CHECK-NEXT:    %[[PANEL:.*]] = memref.subview %[[STACK]][16] [28] [1]
// CHECK:         llvm.call_intrinsic "llvm.arm.sxtb16"
// CHECK:         memref.store {{.*}}, %[[PANEL]]
// CHECK:         llvm.call_intrinsic "llvm.arm.uxtb16"
// CHECK:         memref.store {{.*}}, %[[ROWS]]
// CHECK-NOT:     iter_args
// CHECK-COUNT-32:  llvm.call_intrinsic "llvm.arm.smlad"
// CHECK:         arith.muli {{.*}} : i32
// CHECK:         arith.shrsi
// CHECK-NOT:     kernel.matmul
func.func @scores(%q: memref<5x9xi8>, %k: memref<7x9xi8>, %b: memref<7xi32>, %s: memref<5x7xi8>) {
  kernel.matmul %q, %k bias %b into %s {transpose_rhs, unsigned = array<i64: 0>, requant = #tinyattn.requant<mul = [3, 5, 7, 9, 11, 13, 15], add = 0, shift = 9>} : memref<5x9xi8>, memref<7x9xi8> bias memref<7xi32> into memref<5x7xi8>
  func.return
}

// GENERIC-LABEL: func.func @projection
// GENERIC-NOT:   llvm.call_intrinsic
// GENERIC:       scf.for {{.*}} iter_args({{.*}}) -> (i32, i32, i32, i32, i32, i32, i32, i32) {
// GENERIC-COUNT-8: arith.muli {{.*}} : i32
// GENERIC-NOT:   llvm.call_intrinsic
func.func @projection(%x: memref<4x8xi8>, %w: memref<8x3xi8>, %y: memref<4x3xi32>) {
  kernel.matmul %x, %w into %y : memref<4x8xi8>, memref<8x3xi8> into memref<4x3xi32>
  func.return
}

// The integer softmax finds each row's maximum four lanes per word: SSUB8 sets the GE flags
// that SEL reads, the two kept together.
// CHECK-LABEL: func.func @isoftmax
// GENERIC-LABEL: func.func @isoftmax
// CHECK:         scf.for {{.*}} iter_args({{.*}}) -> (i32) {
// CHECK:           llvm.call_intrinsic "llvm.arm.ssub8"
// CHECK-NEXT:      llvm.call_intrinsic "llvm.arm.sel"
// CHECK:         arith.divui
func.func @isoftmax(%s: memref<6x9xi8>, %row: memref<9xi32>) {
  kernel.softmax %s scratch %row into %s {unsigned = array<i64: 2>, isoftmax = #tinyattn.isoftmax<coeff_a = 1, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256>} : memref<6x9xi8> scratch memref<9xi32> into memref<6x9xi8>
  func.return
}

// ASM-LABEL: <scores>:
// ASM:       ldr
// ASM:       sxtb16
// ASM:       smlad
// ASM-LABEL: <isoftmax>:
// ASM:       ssub8
// ASM-NEXT:  sel
