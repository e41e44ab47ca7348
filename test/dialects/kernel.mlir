// Every kernel op, f32 and integer forms: the custom form round-trips, and so does the generic one.
// RUN: %tinyattn-opt %s | %tinyattn-opt | %filecheck %s
// RUN: %tinyattn-opt --print-op-generic %s | %tinyattn-opt | %filecheck %s
// RUN: %tinyattn-opt --print-op-generic %s | %filecheck %s --check-prefix=GENERIC

// CHECK-LABEL: func.func @f32
func.func @f32(%x: memref<4x8xf32>, %w: memref<8x3xf32>, %b: memref<3xf32>, %k: memref<6x8xf32>, %y: memref<4x3xf32>, %s: memref<4x6xf32>, %g: memref<8xf32>, %x3: memref<2x4x8xf32>, %m: memref<2x8xf32>, %yt: memref<6x4xf32>, %b6: memref<6xf32>) {
  // CHECK-NEXT: kernel.matmul %x, %w bias %b into %y : memref<4x8xf32>, memref<8x3xf32> bias memref<3xf32> into memref<4x3xf32>
  // GENERIC: "kernel.matmul"(%x, %w, %b, %y) <{operandSegmentSizes = array<i32: 1, 1, 1, 0, 1>}>
  kernel.matmul %x, %w bias %b into %y : memref<4x8xf32>, memref<8x3xf32> bias memref<3xf32> into memref<4x3xf32>
  // CHECK-NEXT: kernel.matmul %x, %w acc %y into %y : memref<4x8xf32>, memref<8x3xf32> acc memref<4x3xf32> into memref<4x3xf32>
  kernel.matmul %x, %w acc %y into %y : memref<4x8xf32>, memref<8x3xf32> acc memref<4x3xf32> into memref<4x3xf32>
  // CHECK-NEXT: kernel.matmul %x, %k into %s {transpose_rhs, scale = 5.000000e-01 : f32} : memref<4x8xf32>, memref<6x8xf32> into memref<4x6xf32>
  kernel.matmul %x, %k into %s {transpose_rhs, scale = 0.5 : f32} : memref<4x8xf32>, memref<6x8xf32> into memref<4x6xf32>
  // CHECK-NEXT: kernel.matmul %x, %k bias %b6 into %yt {transpose_rhs, transpose_out} : memref<4x8xf32>, memref<6x8xf32> bias memref<6xf32> into memref<6x4xf32>
  kernel.matmul %x, %k bias %b6 into %yt {transpose_rhs, transpose_out} : memref<4x8xf32>, memref<6x8xf32> bias memref<6xf32> into memref<6x4xf32>
  // CHECK-NEXT: kernel.softmax %s into %s : memref<4x6xf32> into memref<4x6xf32>
  kernel.softmax %s into %s : memref<4x6xf32> into memref<4x6xf32>
  // CHECK-NEXT: kernel.layernorm %x, %g, %g into %x {epsilon = 1.000000e-05 : f32} : memref<4x8xf32>, memref<8xf32>, memref<8xf32> into memref<4x8xf32>
  kernel.layernorm %x, %g, %g into %x {epsilon = 1.0e-05 : f32} : memref<4x8xf32>, memref<8xf32>, memref<8xf32> into memref<4x8xf32>
  // CHECK-NEXT: kernel.map "add" %x, %x into %x : memref<4x8xf32>, memref<4x8xf32> into memref<4x8xf32>
  kernel.map "add" %x, %x into %x : memref<4x8xf32>, memref<4x8xf32> into memref<4x8xf32>
  // CHECK-NEXT: kernel.map "gelu" %x into %x : memref<4x8xf32> into memref<4x8xf32>
  kernel.map "gelu" %x into %x : memref<4x8xf32> into memref<4x8xf32>
  // CHECK-NEXT: kernel.mean %x3 into %m : memref<2x4x8xf32> into memref<2x8xf32>
  kernel.mean %x3 into %m : memref<2x4x8xf32> into memref<2x8xf32>
  func.return
}

// CHECK-LABEL: func.func @int8
func.func @int8(%x: memref<4x8xi8, strided<[16, 1], offset: ?>, "L1">, %w: memref<8x3xi8>, %b: memref<3xi32>, %y: memref<4x3xi8>, %acc: memref<4x3xi32>, %row: memref<3xi32>, %gb: memref<3xi32>) {
  // An unsigned lhs (operand 0) on a strided L1 view, a per-channel requant into 8 bits.
  // CHECK-NEXT: kernel.matmul %x, %w bias %b into %y {unsigned = array<i64: 0>, requant = #tinyattn.requant<mul = [1, 2, 3], add = 0, shift = 4>}
  kernel.matmul %x, %w bias %b into %y {unsigned = array<i64: 0>, requant = #tinyattn.requant<mul = [1, 2, 3], add = 0, shift = 4>} : memref<4x8xi8, strided<[16, 1], offset: ?>, "L1">, memref<8x3xi8> bias memref<3xi32> into memref<4x3xi8>
  // The bare i32 accumulator needs no requant.
  // CHECK-NEXT: kernel.matmul %x, %w into %acc : memref<4x8xi8, strided<[16, 1], offset: ?>, "L1">, memref<8x3xi8> into memref<4x3xi32>
  kernel.matmul %x, %w into %acc : memref<4x8xi8, strided<[16, 1], offset: ?>, "L1">, memref<8x3xi8> into memref<4x3xi32>
  // CHECK-NEXT: kernel.softmax %y scratch %row into %y {unsigned = array<i64: 2>, isoftmax = #tinyattn.isoftmax<coeff_a = 1, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256>}
  kernel.softmax %y scratch %row into %y {unsigned = array<i64: 2>, isoftmax = #tinyattn.isoftmax<coeff_a = 1, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256>} : memref<4x3xi8> scratch memref<3xi32> into memref<4x3xi8>
  // CHECK-NEXT: kernel.layernorm %y, %gb, %gb into %acc {ilayernorm = #tinyattn.ilayernorm<shift = 2, eps = 1>}
  kernel.layernorm %y, %gb, %gb into %acc {ilayernorm = #tinyattn.ilayernorm<shift = 2, eps = 1>} : memref<4x3xi8>, memref<3xi32>, memref<3xi32> into memref<4x3xi32>
  // CHECK-NEXT: kernel.layernorm %y, %gb, %gb into %y {ilayernorm = #tinyattn.quantlib_layernorm<shift = 20>, requant = #tinyattn.requant<mul = 1, add = 0, shift = 0>}
  kernel.layernorm %y, %gb, %gb into %y {ilayernorm = #tinyattn.quantlib_layernorm<shift = 20>, requant = #tinyattn.requant<mul = 1, add = 0, shift = 0>} : memref<4x3xi8>, memref<3xi32>, memref<3xi32> into memref<4x3xi8>
  // CHECK-NEXT: kernel.map "gelu" %y into %y {igelu = #tinyattn.igelu<b = -1000, one = 20000>, requant = #tinyattn.requant<mul = 1, add = 0, shift = 8>}
  kernel.map "gelu" %y into %y {igelu = #tinyattn.igelu<b = -1000, one = 20000>, requant = #tinyattn.requant<mul = 1, add = 0, shift = 8>} : memref<4x3xi8> into memref<4x3xi8>
  // CHECK-NEXT: kernel.map "copy" %acc into %y {requant = #tinyattn.requant<mul = 1, add = 0, shift = 1>}
  kernel.map "copy" %acc into %y {requant = #tinyattn.requant<mul = 1, add = 0, shift = 1>} : memref<4x3xi32> into memref<4x3xi8>
  // CHECK-NEXT: kernel.map "relu" %y into %y : memref<4x3xi8> into memref<4x3xi8>
  kernel.map "relu" %y into %y : memref<4x3xi8> into memref<4x3xi8>
  func.return
}

// A broadcast operand is a view with stride 0; maps may have any rank.
// CHECK-LABEL: func.func @muladd
func.func @muladd(%x: memref<2x4x3xi8>, %m: memref<2x4x3xi32, strided<[1, 0, 0]>>, %a: memref<2x4x3xi32, strided<[0, 0, 1]>>, %y: memref<2x4x3xi8>) {
  // CHECK-NEXT: kernel.map "muladd" %x, %m, %a into %y {requant = #tinyattn.requant<mul = 1, add = 0, shift = 4>} : memref<2x4x3xi8>, memref<2x4x3xi32, strided<[1, 0, 0]>>, memref<2x4x3xi32, strided<[0, 0, 1]>> into memref<2x4x3xi8>
  kernel.map "muladd" %x, %m, %a into %y {requant = #tinyattn.requant<mul = 1, add = 0, shift = 4>} : memref<2x4x3xi8>, memref<2x4x3xi32, strided<[1, 0, 0]>>, memref<2x4x3xi32, strided<[0, 0, 1]>> into memref<2x4x3xi8>
  func.return
}

// CHECK-LABEL: func.func @window
func.func @window(%x: memref<3x8x8xi8>, %w: memref<4x3x3x3xi8>, %b: memref<4xi32>, %y: memref<4x8x8xi8>, %p: memref<3x4x4xi8>) {
  // CHECK-NEXT: kernel.conv %x, %w bias %b into %y {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, groups = 1 : i64, requant = #tinyattn.requant<mul = 3, add = 0, shift = 8>} : memref<3x8x8xi8>, memref<4x3x3x3xi8> bias memref<4xi32> into memref<4x8x8xi8>
  kernel.conv %x, %w bias %b into %y {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, groups = 1 : i64, requant = #tinyattn.requant<mul = 3, add = 0, shift = 8>} : memref<3x8x8xi8>, memref<4x3x3x3xi8> bias memref<4xi32> into memref<4x8x8xi8>
  // CHECK-NEXT: kernel.maxpool %x into %p {unsigned = array<i64: 0, 1>, kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : memref<3x8x8xi8> into memref<3x4x4xi8>
  kernel.maxpool %x into %p {unsigned = array<i64: 0, 1>, kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : memref<3x8x8xi8> into memref<3x4x4xi8>
  func.return
}

// CHECK-LABEL: func.func @patches
func.func @patches(%x: memref<3x8x8xi8>, %rows: memref<64x27xi8>) {
  // CHECK-NEXT: kernel.im2col %x into %rows {kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>} : memref<3x8x8xi8> into memref<64x27xi8>
  kernel.im2col %x into %rows {kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>} : memref<3x8x8xi8> into memref<64x27xi8>
  func.return
}

// CHECK-LABEL: func.func @rmsnorm
func.func @rmsnorm(%x: memref<4x3xi8>, %w: memref<3xi32>) {
  // CHECK-NEXT: kernel.rmsnorm %x, %w into %x {shift = 4 : i64, requant = #tinyattn.requant<mul = 1, add = 0, shift = 0>} : memref<4x3xi8>, memref<3xi32> into memref<4x3xi8>
  kernel.rmsnorm %x, %w into %x {shift = 4 : i64, requant = #tinyattn.requant<mul = 1, add = 0, shift = 0>} : memref<4x3xi8>, memref<3xi32> into memref<4x3xi8>
  func.return
}

// CHECK-LABEL: func.func @lookup
func.func @lookup(%x: memref<4x3xi8>, %t8: memref<256xi8>, %t32: memref<256xi32>, %wide: memref<4x3xi32>) {
  // CHECK-NEXT: kernel.lookup %x, %t8 into %x {unsigned = array<i64: 0>} : memref<4x3xi8>, memref<256xi8> into memref<4x3xi8>
  // GENERIC: "kernel.lookup"(%x, %t8, %x) <{unsigned = array<i64: 0>}>
  kernel.lookup %x, %t8 into %x {unsigned = array<i64: 0>} : memref<4x3xi8>, memref<256xi8> into memref<4x3xi8>
  // CHECK-NEXT: kernel.lookup %x, %t32 into %wide : memref<4x3xi8>, memref<256xi32> into memref<4x3xi32>
  kernel.lookup %x, %t32 into %wide : memref<4x3xi8>, memref<256xi32> into memref<4x3xi32>
  func.return
}
