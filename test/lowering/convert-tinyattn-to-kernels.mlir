// RUN: %tinyattn-opt --split-input-file --verify-diagnostics --convert-tinyattn-to-kernels %s | %filecheck %s

func.func @main(%x: tensor<1x3x4xf32>) -> tensor<1x2xf32> {
  %w1 = arith.constant dense<1.0> : tensor<4x2xf32>
  %g0 = arith.constant dense<1.5> : tensor<4xf32>
  %b0 = arith.constant dense<0.5> : tensor<4xf32>
  %x2 = tinyattn.reshape %x : (tensor<1x3x4xf32>) -> tensor<3x4xf32>
  %n = tinyattn.layernorm %x2, %g0, %b0 {epsilon = 1.0e-05 : f32} : (tensor<3x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<3x4xf32>
  %r = tinyattn.add %x2, %n : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  %g = tinyattn.gelu %r : (tensor<3x4xf32>) -> tensor<3x4xf32>
  %s = tinyattn.softmax %g : (tensor<3x4xf32>) -> tensor<3x4xf32>
  %m = tinyattn.mean %s {axis = 0 : i64} : (tensor<3x4xf32>) -> tensor<4xf32>
  %y = tinyattn.linear %m, %w1 : (tensor<4xf32>, tensor<4x2xf32>) -> tensor<2xf32>
  %o = tinyattn.reshape %y : (tensor<2xf32>) -> tensor<1x2xf32>
  func.return %o : tensor<1x2xf32>
}

// Weights become read-only globals named after them.
// CHECK:      "memref.global"() <{sym_name = "w1", type = memref<4x2xf32>, initial_value = dense<1.000000e+00> : tensor<4x2xf32>, sym_visibility = "private", constant, alignment = 16 : i64}>

// Destination passing: inputs then outputs, no results; the tensor signature is kept.
// CHECK-LABEL: func.func @main(%x: memref<1x3x4xf32>, %out: memref<1x2xf32>) attributes {tinyattn.tensor_signature = (tensor<1x3x4xf32>) -> tensor<1x2xf32>} {
// CHECK:      %[[X:.*]] = memref.reinterpret_cast %x to offset: [0], sizes: [3, 4], strides: [4, 1] : memref<1x3x4xf32> to memref<3x4xf32>

// One kernel op per tensor op, on the buffers seen as matrices; elementwise ops as one flat row.
// CHECK:      %n = memref.alloc() {alignment = 16 : i64} : memref<3x4xf32>
// CHECK-NEXT: kernel.layernorm %[[X]], %g0, %b0 into %n {epsilon = 1.000000e-05 : f32} : memref<3x4xf32>, memref<4xf32>, memref<4xf32> into memref<3x4xf32>
// CHECK:      %r = memref.alloc() {alignment = 16 : i64} : memref<3x4xf32>
// CHECK:      kernel.map "add" %{{.*}}, %{{.*}} into %{{.*}} {{.*}}: memref<1x12xf32>, memref<1x12xf32> into memref<1x12xf32>
// CHECK-NEXT: memref.dealloc %n
// CHECK:      kernel.map "gelu" %{{.*}} into %{{.*}} {{.*}}: memref<1x12xf32> into memref<1x12xf32>
// CHECK:      kernel.softmax %g into %s {{.*}}: memref<3x4xf32> into memref<3x4xf32>
// CHECK:      %[[X3:.*]] = memref.reinterpret_cast %s to offset: [0], sizes: [1, 3, 4], strides: [12, 4, 1] : memref<3x4xf32> to memref<1x3x4xf32>
// CHECK:      kernel.mean %[[X3]] into %{{.*}} {{.*}}: memref<1x3x4xf32> into memref<1x4xf32>

// The head writes into the output.
// CHECK:      %[[OUT:.*]] = memref.reinterpret_cast %out to offset: [0], sizes: [2], strides: [1] : memref<1x2xf32> to memref<2xf32>
// CHECK:      kernel.matmul %{{.*}}, %w1 into %{{.*}} {{.*}}: memref<1x4xf32>, memref<4x2xf32> into memref<1x2xf32>
// CHECK:      memref.dealloc %m
// CHECK-NEXT: func.return
// CHECK-NOT:  tinyattn.{{[a-z]+ }}
// CHECK-NOT:  memref.load
// CHECK:      // -----

// -----

// Attention must have been scheduled by a tiling pass.
func.func @main(%x: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %w = arith.constant dense<0.5> : tensor<2x4x2xf32>
  %b = arith.constant dense<0.1> : tensor<2x2xf32>
  %wo = arith.constant dense<0.25> : tensor<2x2x4xf32>
  %bo = arith.constant dense<0.0> : tensor<4xf32>
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, scale = 0.707 : f32} : (tensor<3x4xf32>, tensor<2x4x2xf32>, tensor<2x2xf32>, tensor<2x4x2xf32>, tensor<2x2xf32>, tensor<2x4x2xf32>, tensor<2x2xf32>, tensor<2x2x4xf32>, tensor<4xf32>) -> tensor<3x4xf32>
  func.return %a : tensor<3x4xf32>
}
// CHECK: 'tinyattn.mhsa' must be scheduled first: run depth-first-tile or layerwise-tile

// -----

func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  func.return %x : tensor<4x8xf32>
}
// CHECK: result 0 of @main is not computed by a tinyattn op
