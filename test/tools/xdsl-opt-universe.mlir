// Plain xdsl-opt sees the tinyattn dialect and passes through the xdsl.universe entry point.
// RUN: %xdsl-opt %s -p convert-tinyattn-to-kernels,convert-kernels-to-loops | %filecheck %s

// CHECK-LABEL: func.func @main(%x: memref<2x4xf32>, %out: memref<2x4xf32>)
// CHECK:         math.fma
// CHECK:         arith.divf
func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %y = tinyattn.gelu %x : (tensor<2x4xf32>) -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}
