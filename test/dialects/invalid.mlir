// Each chunk is one ill-formed op; the diagnostic names the place, the operand and the dimension.
// RUN: %tinyattn-opt --split-input-file --verify-diagnostics %s | %filecheck %s
// RUN: not %tinyattn-opt --split-input-file %s 2>&1 | %filecheck %s --check-prefix=EXIT

// EXIT: tinyattn-opt: error: {{.*}}invalid.mlir:9:3: 'tinyattn.mhsa' op operand 'wk' dimension 2 must be 3 ([H, E, P] = [2, 8, 3]), got 4 (shape [2, 8, 4])
// EXIT-NOT: Traceback

func.func @wk_head_dim(%x: tensor<4x8xf32>, %w: tensor<2x8x3xf32>, %wk: tensor<2x8x4xf32>, %b: tensor<2x3xf32>, %wo: tensor<2x3x8xf32>, %bo: tensor<8xf32>) -> tensor<4x8xf32> {
  %a = tinyattn.mhsa %x q(%w, %b) k(%wk, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, scale = 0.5 : f32} : (tensor<4x8xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x4xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  func.return %a : tensor<4x8xf32>
}
// CHECK: invalid.mlir:9:3: 'tinyattn.mhsa' op operand 'wk' dimension 2 must be 3 ([H, E, P] = [2, 8, 3]), got 4 (shape [2, 8, 4])

// -----

func.func @heads_mismatch(%x: tensor<4x8xf32>, %w: tensor<2x8x3xf32>, %b: tensor<2x3xf32>, %wo: tensor<2x3x8xf32>, %bo: tensor<8xf32>) -> tensor<4x8xf32> {
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 4 : i64, scale = 0.5 : f32} : (tensor<4x8xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  func.return %a : tensor<4x8xf32>
}
// CHECK: :17:3: 'tinyattn.mhsa' op operand 'wq' dimension 0 must be 4 ([H, E, P] = [4, 8, 3]), got 2 (shape [2, 8, 3])

// -----

func.func @x_rank(%x: tensor<1x4x8xf32>, %w: tensor<2x8x3xf32>, %b: tensor<2x3xf32>, %wo: tensor<2x3x8xf32>, %bo: tensor<8xf32>) -> tensor<4x8xf32> {
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, scale = 0.5 : f32} : (tensor<1x4x8xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  func.return %a : tensor<4x8xf32>
}
// CHECK: 'tinyattn.mhsa' op operand 'x' must have rank 2 [S, E], got shape [1, 4, 8]

// -----

func.func @wo_shape(%x: tensor<4x8xf32>, %w: tensor<2x8x3xf32>, %b: tensor<2x3xf32>, %wo: tensor<2x3x6xf32>, %bo: tensor<8xf32>) -> tensor<4x8xf32> {
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, scale = 0.5 : f32} : (tensor<4x8xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x3x6xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  func.return %a : tensor<4x8xf32>
}
// CHECK: 'tinyattn.mhsa' op operand 'wo' dimension 2 must be 8 ([H, P, E] = [2, 3, 8]), got 6 (shape [2, 3, 6])

// -----

func.func @missing_scale(%x: tensor<4x8xf32>, %w: tensor<2x8x3xf32>, %b: tensor<2x3xf32>, %wo: tensor<2x3x8xf32>, %bo: tensor<8xf32>) -> tensor<4x8xf32> {
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64} : (tensor<4x8xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  func.return %a : tensor<4x8xf32>
}
// CHECK: 'tinyattn.mhsa' op 'scale' is required on f32 attention

// -----

func.func @mixed_precision(%x: tensor<4x8xi8>, %w: tensor<2x8x3xf32>, %b: tensor<2x3xf32>, %wo: tensor<2x3x8xf32>, %bo: tensor<8xf32>) -> tensor<4x8xi8> {
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64} : (tensor<4x8xi8>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<4x8xi8>
  func.return %a : tensor<4x8xi8>
}
// CHECK: 'tinyattn.mhsa' op operand 'wq' must have element type i8, got f32

// -----

func.func @int8_missing_requant(%x: tensor<4x8xi8>, %w: tensor<2x8x3xi8>, %b: tensor<2x3xi32>, %wo: tensor<2x3x8xi8>, %bo: tensor<8xi32>) -> tensor<4x8xi8> {
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, normalization = "none"} : (tensor<4x8xi8>, tensor<2x8x3xi8>, tensor<2x3xi32>, tensor<2x8x3xi8>, tensor<2x3xi32>, tensor<2x8x3xi8>, tensor<2x3xi32>, tensor<2x3x8xi8>, tensor<8xi32>) -> tensor<4x8xi8>
  func.return %a : tensor<4x8xi8>
}
// CHECK: 'tinyattn.mhsa' op 'q_requant' is required on integer attention

// -----

func.func @bad_normalization(%x: tensor<4x8xf32>, %w: tensor<2x8x3xf32>, %b: tensor<2x3xf32>, %wo: tensor<2x3x8xf32>, %bo: tensor<8xf32>) -> tensor<4x8xf32> {
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, scale = 0.5 : f32, normalization = "sparsemax"} : (tensor<4x8xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  func.return %a : tensor<4x8xf32>
}
// CHECK: 'tinyattn.mhsa' op normalization must be "softmax" or "none", got "sparsemax"

// -----

func.func @fused_wqk(%x: tensor<4x8xf32>, %wqk: tensor<2x8x3xf32>, %bqk: tensor<2x8xf32>, %w: tensor<2x8x3xf32>, %b: tensor<2x3xf32>, %wo: tensor<2x3x8xf32>, %bo: tensor<8xf32>) -> tensor<4x8xf32> {
  %a = tinyattn.fused_mhsa %x qk(%wqk, %bqk) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64} : (tensor<4x8xf32>, tensor<2x8x3xf32>, tensor<2x8xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  func.return %a : tensor<4x8xf32>
}
// CHECK: 'tinyattn.fused_mhsa' op operand 'wqk' dimension 2 must be 8 ([H, E, E] = [2, 8, 8]), got 3 (shape [2, 8, 3])

// -----

func.func @linear_k(%x: tensor<4x8xf32>, %w: tensor<6x5xf32>) -> tensor<4x5xf32> {
  %y = tinyattn.linear %x, %w : (tensor<4x8xf32>, tensor<6x5xf32>) -> tensor<4x5xf32>
  func.return %y : tensor<4x5xf32>
}
// CHECK: 'tinyattn.linear' op operand 'weight' dimension 0 must be 8 ([K, N] = [8, 5]), got 6 (shape [6, 5])

// -----

func.func @linear_int8_no_requant(%x: tensor<4x8xi8>, %w: tensor<8x5xi8>) -> tensor<4x5xi8> {
  %y = tinyattn.linear %x, %w : (tensor<4x8xi8>, tensor<8x5xi8>) -> tensor<4x5xi8>
  func.return %y : tensor<4x5xi8>
}
// CHECK: 'tinyattn.linear' op 'requant' is required for an 8-bit result

// -----

func.func @requant_channels(%x: tensor<4x8xi8>, %w: tensor<8x5xi8>) -> tensor<4x5xi8> {
  %y = tinyattn.linear %x, %w {requant = #tinyattn.requant<mul = [1, 2, 3], add = 0, shift = 4>} : (tensor<4x8xi8>, tensor<8x5xi8>) -> tensor<4x5xi8>
  func.return %y : tensor<4x5xi8>
}
// CHECK: 'tinyattn.linear' op 'requant' has 3 channels, expected 1 or 5

// -----

func.func @requant_shift(%x: tensor<4x5xi32>) -> tensor<4x5xi8> {
  %y = tinyattn.requant %x {requant = #tinyattn.requant<mul = 1, add = 0, shift = 40>} : (tensor<4x5xi32>) -> tensor<4x5xi8>
  func.return %y : tensor<4x5xi8>
}
// CHECK: invalid.mlir:105:{{[0-9]+}}: requant shift must be in [0, 31], got 40

// -----

func.func @add_shapes(%a: tensor<4x8xf32>, %b: tensor<4x7xf32>) -> tensor<4x8xf32> {
  %y = tinyattn.add %a, %b : (tensor<4x8xf32>, tensor<4x7xf32>) -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}
// CHECK: 'tinyattn.add' op operand 'rhs' dimension 1 must be 8 (shape of 'lhs' = [4, 8]), got 7 (shape [4, 7])

// -----

func.func @softmax_int_without_params(%x: tensor<4x8xi8>) -> tensor<4x8xui8> {
  %y = tinyattn.softmax %x : (tensor<4x8xi8>) -> tensor<4x8xui8>
  func.return %y : tensor<4x8xui8>
}
// CHECK: 'tinyattn.softmax' op an integer softmax takes one of 'isoftmax' and 'itamax'

// -----

func.func @layernorm_gamma(%x: tensor<4x8xf32>, %g: tensor<7xf32>) -> tensor<4x8xf32> {
  %y = tinyattn.layernorm %x, %g, %g {epsilon = 1.0e-05 : f32} : (tensor<4x8xf32>, tensor<7xf32>, tensor<7xf32>) -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}
// CHECK: 'tinyattn.layernorm' op operand 'gamma' dimension 0 must be 8 ([E] = [8]), got 7 (shape [7])

// -----

func.func @mean_shape(%x: tensor<4x8xf32>) -> tensor<4xf32> {
  %y = tinyattn.mean %x {axis = 0 : i64} : (tensor<4x8xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}
// CHECK: 'tinyattn.mean' op result shape must be [8] or [1, 8] (mean over axis 0), got [4]

// -----

func.func @reshape_count(%x: tensor<4x8xf32>) -> tensor<3x8xf32> {
  %y = tinyattn.reshape %x : (tensor<4x8xf32>) -> tensor<3x8xf32>
  func.return %y : tensor<3x8xf32>
}
// CHECK: 'tinyattn.reshape' op result shape [3, 8] must have as many elements as operand 'x' of shape [4, 8] (32)

// -----

func.func @syntax(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %y = tinyattn.gelu %x : tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}
// CHECK: :{{[0-9]+}}:{{[0-9]+}}: Expected

// -----

func.func @v_head_size(%x: tensor<4x8xf32>, %w: tensor<2x8x3xf32>, %b: tensor<2x3xf32>, %wv: tensor<2x8x5xf32>, %bv: tensor<2x5xf32>, %wo: tensor<2x5x8xf32>, %bo: tensor<8xf32>) -> tensor<4x8xf32> {
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%wv, %bv) o(%wo, %bo) {num_heads = 2 : i64, scale = 0.5 : f32} : (tensor<4x8xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x5xf32>, tensor<2x5xf32>, tensor<2x5x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  func.return %a : tensor<4x8xf32>
}
// CHECK: 'tinyattn.mhsa' op operand 'wv' dimension 2 must be 3 ([H, E, P] = [2, 8, 3]), got 5 (shape [2, 8, 5])

// -----

func.func @x_rank0(%x: tensor<f32>, %w: tensor<2x8x3xf32>, %b: tensor<2x3xf32>, %wo: tensor<2x3x8xf32>, %bo: tensor<8xf32>) -> tensor<4x8xf32> {
  %a = tinyattn.fused_mhsa %x qk(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64} : (tensor<f32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  func.return %a : tensor<4x8xf32>
}
// CHECK: 'tinyattn.fused_mhsa' op operand 'x' must have rank 2 [S, E], got shape []

// -----

func.func @softmax_rank0(%x: tensor<f32>) -> tensor<f32> {
  %y = tinyattn.softmax %x : (tensor<f32>) -> tensor<f32>
  func.return %y : tensor<f32>
}
// CHECK: 'tinyattn.softmax' op operand 'x' must have rank >= 1

// -----

func.func @gelu_int_without_params(%x: tensor<4x8xi8>) -> tensor<4x8xi32> {
  %y = tinyattn.gelu %x : (tensor<4x8xi8>) -> tensor<4x8xi32>
  func.return %y : tensor<4x8xi32>
}
// CHECK: 'tinyattn.gelu' op 'igelu' is required on integer gelu

// -----

func.func @gelu_f32_with_params(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %y = tinyattn.gelu %x {igelu = #tinyattn.igelu<b = -80, one = 6980>} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}
// CHECK: 'tinyattn.gelu' op 'igelu' is only allowed on integer ops

// -----

func.func @igelu_b(%x: tensor<4x8xi8>) -> tensor<4x8xi32> {
  %y = tinyattn.gelu %x {igelu = #tinyattn.igelu<b = 3, one = 6980>} : (tensor<4x8xi8>) -> tensor<4x8xi32>
  func.return %y : tensor<4x8xi32>
}
// CHECK: igelu b must be negative, got 3

// -----

func.func @gelu_int8_no_requant(%x: tensor<4x8xi8>) -> tensor<4x8xi8> {
  %y = tinyattn.gelu %x {igelu = #tinyattn.igelu<b = -80, one = 6980>} : (tensor<4x8xi8>) -> tensor<4x8xi8>
  func.return %y : tensor<4x8xi8>
}
// CHECK: 'tinyattn.gelu' op 'requant' is required for an 8-bit result

// -----

func.func @layernorm_int_gamma(%x: tensor<4x8xi8>, %g: tensor<8xf32>, %b: tensor<8xi32>) -> tensor<4x8xi32> {
  %y = tinyattn.layernorm %x, %g, %b {epsilon = 1.0e-05 : f32, ilayernorm = #tinyattn.ilayernorm<shift = 0, eps = 1>} : (tensor<4x8xi8>, tensor<8xf32>, tensor<8xi32>) -> tensor<4x8xi32>
  func.return %y : tensor<4x8xi32>
}
// CHECK: 'tinyattn.layernorm' op operand 'gamma' must have element type i32, got f32

// -----

func.func @layernorm_int_without_params(%x: tensor<4x8xi8>, %g: tensor<8xi32>) -> tensor<4x8xi32> {
  %y = tinyattn.layernorm %x, %g, %g {epsilon = 1.0e-05 : f32} : (tensor<4x8xi8>, tensor<8xi32>, tensor<8xi32>) -> tensor<4x8xi32>
  func.return %y : tensor<4x8xi32>
}
// CHECK: 'tinyattn.layernorm' op 'ilayernorm' is required on integer layernorm

// -----

func.func @layernorm_variance_overflow(%x: tensor<4x64xi8>, %g: tensor<64xi32>) -> tensor<4x64xi32> {
  %y = tinyattn.layernorm %x, %g, %g {epsilon = 1.0e-05 : f32, ilayernorm = #tinyattn.ilayernorm<shift = 0, eps = 1>} : (tensor<4x64xi8>, tensor<64xi32>, tensor<64xi32>) -> tensor<4x64xi32>
  func.return %y : tensor<4x64xi32>
}
// CHECK: 'tinyattn.layernorm' op 'ilayernorm' shift 0 lets sum(c^2) + eps reach 4262522945 for E = 64, more than int32 holds (2147483647); the shift must be at least 1

// -----

func.func @ilayernorm_eps(%x: tensor<4x8xi8>, %g: tensor<8xi32>) -> tensor<4x8xi32> {
  %y = tinyattn.layernorm %x, %g, %g {epsilon = 1.0e-05 : f32, ilayernorm = #tinyattn.ilayernorm<shift = 0, eps = 0>} : (tensor<4x8xi8>, tensor<8xi32>, tensor<8xi32>) -> tensor<4x8xi32>
  func.return %y : tensor<4x8xi32>
}
// CHECK: ilayernorm eps must be in [1, 2147483647], got 0

// -----

func.func @quantlib_layernorm_shift(%x: tensor<4x8xi8>, %g: tensor<8xi32>) -> tensor<4x8xi32> {
  %y = tinyattn.layernorm %x, %g, %g {epsilon = 0.0 : f32, ilayernorm = #tinyattn.quantlib_layernorm<shift = 63>} : (tensor<4x8xi8>, tensor<8xi32>, tensor<8xi32>) -> tensor<4x8xi32>
  func.return %y : tensor<4x8xi32>
}
// CHECK: quantlib_layernorm shift must be in [0, 62], got 63

// -----

func.func @quantlib_layernorm_width(%x: tensor<1x40000xi8>, %g: tensor<40000xi32>) -> tensor<1x40000xi32> {
  %y = tinyattn.layernorm %x, %g, %g {epsilon = 0.0 : f32, ilayernorm = #tinyattn.quantlib_layernorm<shift = 8>} : (tensor<1x40000xi8>, tensor<40000xi32>, tensor<40000xi32>) -> tensor<1x40000xi32>
  func.return %y : tensor<1x40000xi32>
}
// CHECK: 'tinyattn.layernorm' op sum(x^2) over E = 40000 may exceed int32

// -----

func.func @mean_f32_with_requant(%x: tensor<4x8xf32>) -> tensor<8xf32> {
  %y = tinyattn.mean %x {axis = 0 : i64, requant = #tinyattn.requant<mul = 1, add = 0, shift = 2>} : (tensor<4x8xf32>) -> tensor<8xf32>
  func.return %y : tensor<8xf32>
}
// CHECK: 'tinyattn.mean' op 'requant' is only allowed on integer ops

// -----

func.func @mean_int8_requant_channels(%x: tensor<4x8xi8>) -> tensor<8xi8> {
  %y = tinyattn.mean %x {axis = 0 : i64, requant = #tinyattn.requant<mul = [1, 2, 3], add = 0, shift = 2>} : (tensor<4x8xi8>) -> tensor<8xi8>
  func.return %y : tensor<8xi8>
}
// CHECK: 'tinyattn.mean' op 'requant' has 3 channels, expected 1 or 8

// -----

func.func @lookup_short_table(%x: tensor<4x8xi8>, %t: tensor<255xi8>) -> tensor<4x8xi8> {
  %y = tinyattn.lookup %x, %t : (tensor<4x8xi8>, tensor<255xi8>) -> tensor<4x8xi8>
  func.return %y : tensor<4x8xi8>
}
// CHECK: 'tinyattn.lookup' op operand 'table' dimension 0 must be 256 ([256] = [256]), got 255 (shape [255])

// -----

func.func @lookup_of_floats(%x: tensor<4x8xf32>, %t: tensor<256xi8>) -> tensor<4x8xi8> {
  %y = tinyattn.lookup %x, %t : (tensor<4x8xf32>, tensor<256xi8>) -> tensor<4x8xi8>
  func.return %y : tensor<4x8xi8>
}
// CHECK: 'tinyattn.lookup' op operand 'x' must have element type i8 or ui8, got f32

// -----

func.func @lookup_result_type(%x: tensor<4x8xi8>, %t: tensor<256xi32>) -> tensor<4x8xi8> {
  %y = tinyattn.lookup %x, %t : (tensor<4x8xi8>, tensor<256xi32>) -> tensor<4x8xi8>
  func.return %y : tensor<4x8xi8>
}
// CHECK: 'tinyattn.lookup' op result must have element type i32, got i8

// -----

func.func @muladd_not_broadcasting(%x: tensor<4x8xf32>, %m: tensor<4xf32>, %a: tensor<1xf32>) -> tensor<4x8xf32> {
  %y = tinyattn.muladd %x, %m, %a : (tensor<4x8xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}
// CHECK: 'tinyattn.muladd' op operand 'm' of shape [4] does not broadcast to the shape of 'x' [4, 8]

// -----

func.func @muladd_narrow_without_requant(%x: tensor<4x8xi32>, %m: tensor<1xi32>) -> tensor<4x8xi8> {
  %y = tinyattn.muladd %x, %m, %m : (tensor<4x8xi32>, tensor<1xi32>, tensor<1xi32>) -> tensor<4x8xi8>
  func.return %y : tensor<4x8xi8>
}
// CHECK: 'tinyattn.muladd' op 'requant' is required for an 8-bit result

// -----

func.func @matmul_batches(%a: tensor<2x3x4xf32>, %b: tensor<3x4x5xf32>) -> tensor<2x3x5xf32> {
  %y = tinyattn.matmul %a, %b : (tensor<2x3x4xf32>, tensor<3x4x5xf32>) -> tensor<2x3x5xf32>
  func.return %y : tensor<2x3x5xf32>
}
// CHECK: 'tinyattn.matmul' op batch dimensions [2] and [3] differ; they must be equal, or one operand a matrix

// -----

func.func @matmul_depth(%a: tensor<3x4xf32>, %b: tensor<5x2xf32>) -> tensor<3x2xf32> {
  %y = tinyattn.matmul %a, %b : (tensor<3x4xf32>, tensor<5x2xf32>) -> tensor<3x2xf32>
  func.return %y : tensor<3x2xf32>
}
// CHECK: 'tinyattn.matmul' op the depth of 'lhs' [3, 4] (4) must equal the rows of 'rhs' [5, 2]

// -----

func.func @rmsnorm_weight(%x: tensor<3x8xi8>, %w: tensor<4xi32>) -> tensor<3x8xi32> {
  %y = tinyattn.rmsnorm %x, %w {shift = 4 : i64} : (tensor<3x8xi8>, tensor<4xi32>) -> tensor<3x8xi32>
  func.return %y : tensor<3x8xi32>
}
// CHECK: 'tinyattn.rmsnorm' op operand 'weight' dimension 0 must be 8 ([E] = [8]), got 4 (shape [4])

// -----

func.func @conv_groups(%x: tensor<3x8x8xf32>, %w: tensor<4x2x3x3xf32>) -> tensor<4x6x6xf32> {
  %y = tinyattn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, groups = 1 : i64} : (tensor<3x8x8xf32>, tensor<4x2x3x3xf32>) -> tensor<4x6x6xf32>
  func.return %y : tensor<4x6x6xf32>
}
// CHECK: 'tinyattn.conv' op groups=1 does not split C_in=3 into groups of 2 channels and C_out=4 evenly

// -----

func.func @conv_output(%x: tensor<3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<4x8x8xf32> {
  %y = tinyattn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, groups = 1 : i64} : (tensor<3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<4x8x8xf32>
  func.return %y : tensor<4x8x8xf32>
}
// CHECK: 'tinyattn.conv' op result dimension 1 must be 6 ([C_out, *out] = [4, 6, 6]), got 8 (shape [4, 8, 8])

// -----

func.func @maxpool_pads(%x: tensor<3x8x8xf32>) -> tensor<3x4x4xf32> {
  %y = tinyattn.maxpool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0>} : (tensor<3x8x8xf32>) -> tensor<3x4x4xf32>
  func.return %y : tensor<3x4x4xf32>
}
// CHECK: 'tinyattn.maxpool' op strides must have 2 values and pads 4 (begins, then ends), got [2, 2] and [0, 0]

// -----

func.func @transpose_perm(%x: tensor<3x4xf32>) -> tensor<4x3xf32> {
  %y = tinyattn.transpose %x {perm = array<i64: 1, 1>} : (tensor<3x4xf32>) -> tensor<4x3xf32>
  func.return %y : tensor<4x3xf32>
}
// CHECK: 'tinyattn.transpose' op perm [1, 1] is not a permutation of the 2 axes of 'x'

// -----

func.func @map_fn(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %y = tinyattn.map "tanh" %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}
// CHECK: 'tinyattn.map' op fn must be one of sigmoid, sqrt, round, add, sub, mul, div, max, min, got 'tanh'

// -----

func.func @map_arity(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %y = tinyattn.map "mul" %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}
// CHECK: 'tinyattn.map' op 'mul' takes 2 operands, got 1

// -----

func.func @map_integers(%x: tensor<4x8xi8>) -> tensor<4x8xi8> {
  %y = tinyattn.map "sigmoid" %x : (tensor<4x8xi8>) -> tensor<4x8xi8>
  func.return %y : tensor<4x8xi8>
}
// CHECK: 'tinyattn.map' op result must have element type f32, got i8

// -----

func.func @concat_widths(%a: tensor<4x6xf32>, %b: tensor<4x5xf32>) -> tensor<8x6xf32> {
  %y = tinyattn.concat %a, %b {axis = 0 : i64} : (tensor<4x6xf32>, tensor<4x5xf32>) -> tensor<8x6xf32>
  func.return %y : tensor<8x6xf32>
}
// CHECK: 'tinyattn.concat' op operand 1 of shape [4, 5] does not join the result [8, 6] along axis 0

// -----

func.func @slice_past_the_end(%x: tensor<4x6xf32>) -> tensor<2x6xf32> {
  %y = tinyattn.slice %x {starts = array<i64: 2, 0>, steps = array<i64: 2, 1>} : (tensor<4x6xf32>) -> tensor<2x6xf32>
  func.return %y : tensor<2x6xf32>
}
// CHECK: 'tinyattn.slice' op axis 0: 2 elements from 2 in steps of 2 leave [0, 4)

// -----

func.func @conv_requant_channels(%x: tensor<3x8x8xi8>, %w: tensor<4x3x3x3xi8>) -> tensor<4x8x8xi8> {
  %y = tinyattn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, groups = 1 : i64, requant = #tinyattn.requant<mul = [1, 2, 3], add = 0, shift = 8>} : (tensor<3x8x8xi8>, tensor<4x3x3x3xi8>) -> tensor<4x8x8xi8>
  func.return %y : tensor<4x8x8xi8>
}
// CHECK: 'tinyattn.conv' op 'requant' has 3 channels, expected 1 or 4
