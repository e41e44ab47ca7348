// RUN: %tinyattn-opt --convert-tinyattn-to-kernels="pack-weights=true" %s | %filecheck %s
// RUN: %tinyattn-opt --convert-tinyattn-to-kernels %s | %filecheck %s --check-prefix=PLAIN

// pack-weights: an int8 weight used only by linears is stored transposed, [N, K], and read by
// rows (transpose_rhs), the layout word-loading kernels need; f32 weights stay as they are (f32
// kernels read any layout), and so does a weight with another use.
func.func @main(%x: tensor<2x3xi8>, %f: tensor<2x3xf32>) -> (tensor<2x4xi32>, tensor<2x4xf32>, tensor<3x4xi8>) {
  %w = arith.constant dense<[[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]> : tensor<3x4xi8>
  %wf = arith.constant dense<0.5> : tensor<3x4xf32>
  %y = tinyattn.linear %x, %w : (tensor<2x3xi8>, tensor<3x4xi8>) -> tensor<2x4xi32>
  %g = tinyattn.linear %f, %wf : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  %v = arith.constant dense<7> : tensor<3x4xi8>
  %r = tinyattn.relu %v : (tensor<3x4xi8>) -> tensor<3x4xi8>
  func.return %y, %g, %r : tensor<2x4xi32>, tensor<2x4xf32>, tensor<3x4xi8>
}

// CHECK:      "memref.global"() <{sym_name = "w", type = memref<4x3xi8>, initial_value = dense<{{\[\[}}1, 5, 9], [2, 6, 10], [3, 7, 11], [4, 8, 12]]> : tensor<4x3xi8>
// CHECK:      "memref.global"() <{sym_name = "wf", type = memref<3x4xf32>
// CHECK:      "memref.global"() <{sym_name = "v", type = memref<3x4xi8>
// CHECK:      kernel.matmul %x, %w into %{{.*}} {transpose_rhs} : memref<2x3xi8>, memref<4x3xi8> into memref<2x4xi32>
// CHECK:      kernel.matmul %f, %wf into %{{.*}} : memref<2x3xf32>, memref<3x4xf32> into memref<2x4xf32>

// PLAIN:      "memref.global"() <{sym_name = "w", type = memref<3x4xi8>
// PLAIN:      kernel.matmul %x, %w into %{{.*}} : memref<2x3xi8>, memref<3x4xi8> into memref<2x4xi32>
