// Each chunk is one ill-formed kernel op; the diagnostic names the operand and the reason.
// RUN: %tinyattn-opt --split-input-file --verify-diagnostics %s | %filecheck %s

func.func @depth(%x: memref<4x8xf32>, %w: memref<6x3xf32>, %y: memref<4x3xf32>) {
  kernel.matmul %x, %w into %y : memref<4x8xf32>, memref<6x3xf32> into memref<4x3xf32>
  func.return
}
// CHECK: 'kernel.matmul' op operand 'rhs' [6, 3] does not have the depth 8 of 'lhs'

// -----

func.func @transposed(%x: memref<4x8xf32>, %k: memref<8x6xf32>, %s: memref<4x6xf32>) {
  kernel.matmul %x, %k into %s {transpose_rhs} : memref<4x8xf32>, memref<8x6xf32> into memref<4x6xf32>
  func.return
}
// CHECK: 'kernel.matmul' op operand 'rhs' [8, 6] does not have the depth 8 of 'lhs'

// -----

func.func @both_inits(%x: memref<4x8xf32>, %w: memref<8x3xf32>, %b: memref<3xf32>, %y: memref<4x3xf32>) {
  kernel.matmul %x, %w bias %b acc %y into %y : memref<4x8xf32>, memref<8x3xf32> bias memref<3xf32> acc memref<4x3xf32> into memref<4x3xf32>
  func.return
}
// CHECK: 'kernel.matmul' op the accumulator starts at 'bias' or at 'acc', not both

// -----

func.func @narrow_without_requant(%x: memref<4x8xi8>, %w: memref<8x3xi8>, %y: memref<4x3xi8>) {
  kernel.matmul %x, %w into %y : memref<4x8xi8>, memref<8x3xi8> into memref<4x3xi8>
  func.return
}
// CHECK: 'kernel.matmul' op an 8-bit 'out' needs a 'requant' epilogue

// -----

func.func @requant_channels(%x: memref<4x8xi8>, %w: memref<8x3xi8>, %y: memref<4x3xi8>) {
  kernel.matmul %x, %w into %y {requant = #tinyattn.requant<mul = [1, 2], add = 0, shift = 4>} : memref<4x8xi8>, memref<8x3xi8> into memref<4x3xi8>
  func.return
}
// CHECK: 'kernel.matmul' op 'requant' has 2 channels, expected 1 or 3

// -----

func.func @integer_scale(%x: memref<4x8xi8>, %w: memref<8x3xi8>, %y: memref<4x3xi32>) {
  kernel.matmul %x, %w into %y {scale = 0.5 : f32} : memref<4x8xi8>, memref<8x3xi8> into memref<4x3xi32>
  func.return
}
// CHECK: 'kernel.matmul' op 'scale' applies to f32 matmuls (integers fold it in 'requant')

// -----

func.func @unsigned_wide(%x: memref<4x8xi8>, %w: memref<8x3xi8>, %y: memref<4x3xi32>) {
  kernel.matmul %x, %w into %y {unsigned = array<i64: 2>} : memref<4x8xi8>, memref<8x3xi8> into memref<4x3xi32>
  func.return
}
// CHECK: 'kernel.matmul' op unsigned operand 2 must hold 8-bit data (i8)

// -----

func.func @isoftmax_scratch(%s: memref<4x6xi8>) {
  kernel.softmax %s into %s {isoftmax = #tinyattn.isoftmax<coeff_a = 1, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256>} : memref<4x6xi8> into memref<4x6xi8>
  func.return
}
// CHECK: 'kernel.softmax' op the integer softmax needs an i32 'scratch' row

// -----

func.func @map_arity(%x: memref<4x8xf32>) {
  kernel.map "add" %x into %x : memref<4x8xf32> into memref<4x8xf32>
  func.return
}
// CHECK: 'kernel.map' op 'add' takes 2 inputs, got 1

// -----

func.func @map_fn(%x: memref<4x8xf32>) {
  kernel.map "tanh" %x into %x : memref<4x8xf32> into memref<4x8xf32>
  func.return
}
// CHECK: 'kernel.map' op fn must be one of copy, add, relu, gelu, muladd, sigmoid, sqrt, round, sub, mul, div, max, min, got 'tanh'

// -----

func.func @mean_shape(%x: memref<2x4x8xf32>, %m: memref<2x4xf32>) {
  kernel.mean %x into %m : memref<2x4x8xf32> into memref<2x4xf32>
  func.return
}
// CHECK: 'kernel.mean' op operand 'out' must have shape [2, 8], got [2, 4]

// -----

func.func @transposed_out(%x: memref<4x8xf32>, %w: memref<8x3xf32>, %y: memref<4x3xf32>) {
  kernel.matmul %x, %w into %y {transpose_out} : memref<4x8xf32>, memref<8x3xf32> into memref<4x3xf32>
  func.return
}
// CHECK: 'kernel.matmul' op operand 'out' must have shape [3, 4], got [4, 3]

// -----

func.func @lookup_table_type(%x: memref<4x8xi8>, %t: memref<256xi32>, %y: memref<4x8xi8>) {
  kernel.lookup %x, %t into %y : memref<4x8xi8>, memref<256xi32> into memref<4x8xi8>
  func.return
}
// CHECK: 'kernel.lookup' op operand 'out' must hold i32, got i8

// -----

func.func @lookup_table_length(%x: memref<4x8xi8>, %t: memref<128xi8>, %y: memref<4x8xi8>) {
  kernel.lookup %x, %t into %y : memref<4x8xi8>, memref<128xi8> into memref<4x8xi8>
  func.return
}
// CHECK: 'kernel.lookup' op operand 'table' must have shape [256], got [128]

// -----

func.func @muladd_arity(%x: memref<4x8xf32>) {
  kernel.map "muladd" %x, %x into %x : memref<4x8xf32>, memref<4x8xf32> into memref<4x8xf32>
  func.return
}
// CHECK: 'kernel.map' op 'muladd' takes 3 inputs, got 2

// -----

func.func @float_map_of_integers(%x: memref<4x8xi8>) {
  kernel.map "sigmoid" %x into %x : memref<4x8xi8> into memref<4x8xi8>
  func.return
}
// CHECK: 'kernel.map' op 'sigmoid' maps f32 data

// -----

func.func @window_stride(%x: memref<3x8x8xi8>, %y: memref<3x8x8xi8>) {
  kernel.maxpool %x into %y {kernel = array<i64: 1, 1>, strides = array<i64: 0, 1>, pads = array<i64: 0, 0, 0, 0>} : memref<3x8x8xi8> into memref<3x8x8xi8>
  func.return
}
// CHECK: 'kernel.maxpool' op kernel sizes and strides must be positive, pads non-negative

// -----

func.func @maxpool_channels(%x: memref<3x8x8xi8>, %y: memref<5x4x4xi8>) {
  kernel.maxpool %x into %y {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : memref<3x8x8xi8> into memref<5x4x4xi8>
  func.return
}
// CHECK: 'kernel.maxpool' op operand 'out' must be [3, 4, 4], got [5, 4, 4]

// -----

func.func @conv_groups(%x: memref<4x8x8xf32>, %w: memref<5x2x3x3xf32>, %y: memref<5x6x6xf32>) {
  kernel.conv %x, %w into %y {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, groups = 2 : i64} : memref<4x8x8xf32>, memref<5x2x3x3xf32> into memref<5x6x6xf32>
  func.return
}
// CHECK: 'kernel.conv' op weight [C_out, C_in/groups, KH, KW] does not fit x with groups=2

// -----

func.func @im2col_kernel(%x: memref<3x8x8xi8>, %y: memref<64x27xi8>) {
  kernel.im2col %x into %y {kernel = array<i64: 3, 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>} : memref<3x8x8xi8> into memref<64x27xi8>
  func.return
}
// CHECK: 'kernel.im2col' op a 2-D window: 2 kernel sizes, 2 strides, 4 pads

// -----

func.func @quantlib_layernorm_width(%x: memref<1x40000xi8>, %g: memref<40000xi32>, %y: memref<1x40000xi32>) {
  kernel.layernorm %x, %g, %g into %y {ilayernorm = #tinyattn.quantlib_layernorm<shift = 8>} : memref<1x40000xi8>, memref<40000xi32>, memref<40000xi32> into memref<1x40000xi32>
  func.return
}
// CHECK: 'kernel.layernorm' op sum(x^2) over E = 40000 may exceed int32

// -----

func.func @ibert_layernorm_shift(%x: memref<4x64xi8>, %g: memref<64xi32>, %y: memref<4x64xi32>) {
  kernel.layernorm %x, %g, %g into %y {ilayernorm = #tinyattn.ilayernorm<shift = 0, eps = 1>} : memref<4x64xi8>, memref<64xi32>, memref<64xi32> into memref<4x64xi32>
  func.return
}
// CHECK: 'kernel.layernorm' op 'ilayernorm' shift 0 lets sum(c^2) + eps reach 4262522945 for E = 64, more than int32 holds (2147483647); the shift must be at least 1

// -----

func.func @rmsnorm_width(%x: memref<1x40000xi8>, %w: memref<40000xi32>, %y: memref<1x40000xi32>) {
  kernel.rmsnorm %x, %w into %y {shift = 8 : i64} : memref<1x40000xi8>, memref<40000xi32> into memref<1x40000xi32>
  func.return
}
// CHECK: 'kernel.rmsnorm' op sum(x^2) over E = 40000 may exceed int32

// -----

func.func @conv_requant_channels(%x: memref<3x8x8xi8>, %w: memref<4x3x3x3xi8>, %y: memref<4x8x8xi8>) {
  kernel.conv %x, %w into %y {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, groups = 1 : i64, requant = #tinyattn.requant<mul = [1, 2, 3], add = 0, shift = 8>} : memref<3x8x8xi8>, memref<4x3x3x3xi8> into memref<4x8x8xi8>
  func.return
}
// CHECK: 'kernel.conv' op 'requant' has 3 channels, expected 1 or 4
