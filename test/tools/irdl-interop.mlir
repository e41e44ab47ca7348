// tinyattn's dialects in upstream MLIR: mlir-opt-22 loads the IRDL tinyattn-opt writes, parses
// and verifies the interop form (generic ops, properties as attributes, attributes positional),
// and tinyattn-opt reads back what it prints.
// REQUIRES: mlir
// RUN: %tinyattn-opt --emit-irdl %t.irdl
// RUN: %tinyattn-opt %s --mlir-interop | %filecheck %s --check-prefix=INTEROP
// RUN: %tinyattn-opt %s --mlir-interop | %mlir-opt --irdl-file=%t.irdl --mlir-print-op-generic | %tinyattn-opt | %filecheck %s

// INTEROP: "tinyattn.linear"(%{{.*}}, %{{.*}}, %{{.*}}) {requant = #tinyattn.requant_attr<array<i64: 3, 4>, array<i64: 0, 1>, 7 : i64>}
// CHECK-LABEL: func.func @int8
// CHECK: tinyattn.linear %{{.*}}, %{{.*}}, %{{.*}} {requant = #tinyattn.requant<mul = [3, 4], add = [0, 1], shift = 7>} : (tensor<4x8xi8>, tensor<8x2xi8>, tensor<2xi32>) -> tensor<4x2xi8>
func.func @int8(%x: tensor<4x8xi8>, %w: tensor<8x2xi8>, %b: tensor<2xi32>) -> tensor<4x2xi8> {
  %y = tinyattn.linear %x, %w, %b {requant = #tinyattn.requant<mul = [3, 4], add = [0, 1], shift = 7>} : (tensor<4x8xi8>, tensor<8x2xi8>, tensor<2xi32>) -> tensor<4x2xi8>
  func.return %y : tensor<4x2xi8>
}

// INTEROP: "kernel.softmax"(%{{.*}}, %{{.*}}, %{{.*}}) {isoftmax = #tinyattn.isoftmax<1 : i64, 2 : i64, 3 : i64, 4 : i64, 256 : i64>, unsigned = array<i64: 2>}
// INTEROP: "kernel.map"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) {fn = "muladd", operandSegmentSizes = array<i32: 1, 1, 1, 0, 1>}
// INTEROP: %{{.*}} = "dma.start"(%{{.*}}, %{{.*}}) : (memref<4x8xf32>, memref<4x8xf32, "L1">) -> !dma.token
// CHECK-LABEL: func.func @kernels
// CHECK: kernel.softmax %{{.*}} scratch %{{.*}} into %{{.*}} {isoftmax = #tinyattn.isoftmax<coeff_a = 1, coeff_b = 2, coeff_c = 3, log2 = 4, n_levels = 256>, unsigned = array<i64: 2>}
// CHECK: kernel.map "muladd" %{{.*}}, %{{.*}}, %{{.*}} into %{{.*}} : memref<4x8xf32>, memref<4x8xf32, strided<[0, 1]>>, memref<4x8xf32, strided<[0, 1]>> into memref<4x8xf32>
// CHECK: %[[T:.*]] = dma.start %{{.*}}, %{{.*}} : memref<4x8xf32>, memref<4x8xf32, "L1">
// CHECK: dma.wait %[[T]]
func.func @kernels(%s: memref<4x8xi8>, %r: memref<8xi32>, %x: memref<4x8xf32>, %v: memref<4x8xf32, strided<[0, 1]>>, %l1: memref<4x8xf32, "L1">) {
  kernel.softmax %s scratch %r into %s {isoftmax = #tinyattn.isoftmax<coeff_a = 1, coeff_b = 2, coeff_c = 3, log2 = 4, n_levels = 256>, unsigned = array<i64: 2>} : memref<4x8xi8> scratch memref<8xi32> into memref<4x8xi8>
  kernel.map "muladd" %x, %v, %v into %x : memref<4x8xf32>, memref<4x8xf32, strided<[0, 1]>>, memref<4x8xf32, strided<[0, 1]>> into memref<4x8xf32>
  %t = dma.start %x, %l1 : memref<4x8xf32>, memref<4x8xf32, "L1">
  dma.wait %t
  func.return
}
