// The GAP9 int8 matmul: depth-contiguous operands read by words, four byte products per CORE-V
// dot product (inline assembly: LLVM 22 has no intrinsic for them) into 2x2 register blocks;
// the signedness of the operands picks the instruction (unsigned lhs: cv.sdotusp.b).
// RUN: %tinyattn-opt %s --convert-kernels-to-loops="target=gap9" | %filecheck %s
// RUN: %tinyattn-opt %s --convert-kernels-to-loops="target=gap9" --print-op-generic | %mlir-opt %upstream-flags-32 | %mlir-translate --mlir-to-llvmir | %opt-gap9 | %llc-gap9 -filetype=obj -o %t.o
// RUN: %llvm-objdump -d --mattr=+xcvsimd %t.o | %filecheck %s --check-prefix=ASM
// REQUIRES: mlir, codegen

// CHECK-LABEL: func.func @signed
// CHECK:         scf.for {{.*}} -> (i32, i32, i32, i32) {
// CHECK-COUNT-4:   llvm.inline_asm "cv.sdotsp.b $0, $1, $2", "=r,r,r,0"
// CHECK:           scf.yield
func.func @signed(%q: memref<4x8xi8>, %k: memref<6x8xi8>, %s: memref<4x6xi32>) {
  kernel.matmul %q, %k into %s {transpose_rhs} : memref<4x8xi8>, memref<6x8xi8> into memref<4x6xi32>
  func.return
}

// CHECK-LABEL: func.func @unsigned_lhs
// CHECK-COUNT-4:   llvm.inline_asm "cv.sdotusp.b $0, $1, $2", "=r,r,r,0"
func.func @unsigned_lhs(%p: memref<4x8xi8>, %v: memref<6x8xi8>, %c: memref<4x6xi32>) {
  kernel.matmul %p, %v into %c {transpose_rhs, unsigned = array<i64: 0>} : memref<4x8xi8>, memref<6x8xi8> into memref<4x6xi32>
  func.return
}

// ASM-LABEL: <signed>:
// ASM:       cv.sdotsp.b
// ASM-LABEL: <unsigned_lhs>:
// ASM:       cv.sdotusp.b
