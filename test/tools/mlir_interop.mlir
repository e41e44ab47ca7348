// The generic form tinyattn-opt prints for upstream ops (func, arith, scf, memref, dense
// constants) parses and verifies in upstream mlir-opt-22.
// REQUIRES: mlir
// RUN: %tinyattn-opt --print-op-generic %s | %mlir-opt --verify-each | %filecheck %s

// CHECK-LABEL: func.func @scale_rows
// CHECK: scf.for
// CHECK: memref.load
// CHECK: arith.mulf
// CHECK: memref.store
func.func @scale_rows(%src: memref<4x8xf32>, %dst: memref<4x8xf32, strided<[8, 1]>>, %s: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  scf.for %i = %c0 to %c4 step %c1 {
    scf.for %j = %c0 to %c8 step %c1 {
      %v = memref.load %src[%i, %j] : memref<4x8xf32>
      %w = arith.mulf %v, %s : f32
      memref.store %w, %dst[%i, %j] : memref<4x8xf32, strided<[8, 1]>>
    }
  }
  func.return
}

// CHECK-LABEL: func.func @constants
// CHECK: arith.constant dense<[1.000000e+00, -2.500000e+00]> : tensor<2xf32>
// CHECK: arith.constant dense<[1, -128]> : tensor<2xi8>
// CHECK: memref.alloc() {alignment = 16 : i64} : memref<2x3xi32, 1>
func.func @constants() -> (tensor<2xf32>, tensor<2xi8>) {
  %f = arith.constant dense<[1.0, -2.5]> : tensor<2xf32>
  %i = arith.constant dense<[1, -128]> : tensor<2xi8>
  %m = memref.alloc() {alignment = 16 : i64} : memref<2x3xi32, 1>
  memref.dealloc %m : memref<2x3xi32, 1>
  func.return %f, %i : tensor<2xf32>, tensor<2xi8>
}
