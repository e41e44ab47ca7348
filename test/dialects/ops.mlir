// Every tinyattn op, f32 and integer forms: the custom form round-trips, and so does the generic one.
// RUN: %tinyattn-opt %s | %tinyattn-opt | %filecheck %s
// RUN: %tinyattn-opt --print-op-generic %s | %tinyattn-opt | %filecheck %s
// RUN: %tinyattn-opt --print-op-generic %s | %filecheck %s --check-prefix=GENERIC

// CHECK-LABEL: func.func @encoder_f32
func.func @encoder_f32(%x: tensor<4x8xf32>, %w: tensor<2x8x3xf32>, %b: tensor<2x3xf32>, %wo: tensor<2x3x8xf32>, %bo: tensor<8xf32>, %w1: tensor<8x5xf32>, %b1: tensor<5xf32>) -> tensor<1x5xf32> {
  // CHECK-NEXT: %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, scale = 5.000000e-01 : f32} : (tensor<4x8xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  // GENERIC: "tinyattn.mhsa"(%x, %w, %b, %w, %b, %w, %b, %wo, %bo) <{num_heads = 2 : i64, scale = 5.000000e-01 : f32}>
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, scale = 0.5 : f32} : (tensor<4x8xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  // CHECK-NEXT: %r = tinyattn.add %x, %a : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %r = tinyattn.add %x, %a : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  // CHECK-NEXT: %n = tinyattn.layernorm %r, %bo, %bo {epsilon = 1.000000e-05 : f32} : (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %n = tinyattn.layernorm %r, %bo, %bo {epsilon = 1.0e-05 : f32} : (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  // CHECK-NEXT: %h = tinyattn.linear %n, %w1, %b1 : (tensor<4x8xf32>, tensor<8x5xf32>, tensor<5xf32>) -> tensor<4x5xf32>
  %h = tinyattn.linear %n, %w1, %b1 : (tensor<4x8xf32>, tensor<8x5xf32>, tensor<5xf32>) -> tensor<4x5xf32>
  // CHECK-NEXT: %nobias = tinyattn.linear %n, %w1 : (tensor<4x8xf32>, tensor<8x5xf32>) -> tensor<4x5xf32>
  %nobias = tinyattn.linear %n, %w1 : (tensor<4x8xf32>, tensor<8x5xf32>) -> tensor<4x5xf32>
  // CHECK-NEXT: %g = tinyattn.gelu %h : (tensor<4x5xf32>) -> tensor<4x5xf32>
  %g = tinyattn.gelu %h : (tensor<4x5xf32>) -> tensor<4x5xf32>
  // CHECK-NEXT: %relu = tinyattn.relu %g : (tensor<4x5xf32>) -> tensor<4x5xf32>
  %relu = tinyattn.relu %g : (tensor<4x5xf32>) -> tensor<4x5xf32>
  // CHECK-NEXT: %s = tinyattn.softmax %relu : (tensor<4x5xf32>) -> tensor<4x5xf32>
  %s = tinyattn.softmax %relu : (tensor<4x5xf32>) -> tensor<4x5xf32>
  // CHECK-NEXT: %m = tinyattn.mean %s {axis = 0 : i64} : (tensor<4x5xf32>) -> tensor<1x5xf32>
  %m = tinyattn.mean %s {axis = 0 : i64} : (tensor<4x5xf32>) -> tensor<1x5xf32>
  // CHECK-NEXT: %flat = tinyattn.reshape %m : (tensor<1x5xf32>) -> tensor<5xf32>
  %flat = tinyattn.reshape %m : (tensor<1x5xf32>) -> tensor<5xf32>
  %o = tinyattn.reshape %flat : (tensor<5xf32>) -> tensor<1x5xf32>
  func.return %o : tensor<1x5xf32>
}

// CHECK-LABEL: func.func @fused_f32
func.func @fused_f32(%x: tensor<4x8xf32>, %wqk: tensor<2x8x8xf32>, %bqk: tensor<2x8xf32>, %w: tensor<2x8x3xf32>, %b: tensor<2x3xf32>, %wo: tensor<2x3x8xf32>, %bo: tensor<8xf32>) -> tensor<4x8xf32> {
  // CHECK-NEXT: tinyattn.fused_mhsa %x qk(%wqk, %bqk) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64} : (tensor<4x8xf32>, tensor<2x8x8xf32>, tensor<2x8xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %a = tinyattn.fused_mhsa %x qk(%wqk, %bqk) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64} : (tensor<4x8xf32>, tensor<2x8x8xf32>, tensor<2x8xf32>, tensor<2x8x3xf32>, tensor<2x3xf32>, tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  func.return %a : tensor<4x8xf32>
}

// Integer attention as in integerised EEGFormer: unsigned input, no softmax, per-stage requant.
// CHECK-LABEL: func.func @mhsa_int8
func.func @mhsa_int8(%x: tensor<66x16xui8>, %w: tensor<8x16x2xi8>, %b: tensor<8x2xi32>, %wo: tensor<8x2x16xi8>, %bo: tensor<16xi32>) -> tensor<66x16xi8> {
  // CHECK-NEXT: tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 8 : i64, normalization = "none", q_requant = #tinyattn.requant<mul = 257, add = 0, shift = 16>, k_requant = #tinyattn.requant<mul = 257, add = 0, shift = 16>, v_requant = #tinyattn.requant<mul = [1, 2], add = [0, -4], shift = 16>, score_requant = #tinyattn.requant<mul = 514, add = 0, shift = 16>, context_requant = #tinyattn.requant<mul = 514, add = 0, shift = 16>, out_requant = #tinyattn.requant<mul = 514, add = 0, shift = 16>} : (tensor<66x16xui8>
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 8 : i64, normalization = "none", q_requant = #tinyattn.requant<mul = 257, add = 0, shift = 16>, k_requant = #tinyattn.requant<mul = 257, add = 0, shift = 16>, v_requant = #tinyattn.requant<mul = [1, 2], add = [0, -4], shift = 16>, score_requant = #tinyattn.requant<mul = 514, add = 0, shift = 16>, context_requant = #tinyattn.requant<mul = 514, add = 0, shift = 16>, out_requant = #tinyattn.requant<mul = 514, add = 0, shift = 16>} : (tensor<66x16xui8>, tensor<8x16x2xi8>, tensor<8x2xi32>, tensor<8x16x2xi8>, tensor<8x2xi32>, tensor<8x16x2xi8>, tensor<8x2xi32>, tensor<8x2x16xi8>, tensor<16xi32>) -> tensor<66x16xi8>
  func.return %a : tensor<66x16xi8>
}

// CHECK-LABEL: func.func @ops_int8
func.func @ops_int8(%x: tensor<4x8xi8>, %w: tensor<8x5xi8>, %b: tensor<5xi32>) -> tensor<4x5xui8> {
  // CHECK-NEXT: %acc = tinyattn.linear %x, %w, %b : (tensor<4x8xi8>, tensor<8x5xi8>, tensor<5xi32>) -> tensor<4x5xi32>
  %acc = tinyattn.linear %x, %w, %b : (tensor<4x8xi8>, tensor<8x5xi8>, tensor<5xi32>) -> tensor<4x5xi32>
  // CHECK-NEXT: %q = tinyattn.requant %acc {requant = #tinyattn.requant<mul = 3, add = 0, shift = 8>} : (tensor<4x5xi32>) -> tensor<4x5xi8>
  %q = tinyattn.requant %acc {requant = #tinyattn.requant<mul = 3, add = 0, shift = 8>} : (tensor<4x5xi32>) -> tensor<4x5xi8>
  // CHECK-NEXT: %y = tinyattn.linear %x, %w {requant = #tinyattn.requant<mul = [1, 2, 3, 4, 5], add = 0, shift = 4>} : (tensor<4x8xi8>, tensor<8x5xi8>) -> tensor<4x5xi8>
  %y = tinyattn.linear %x, %w {requant = #tinyattn.requant<mul = [1, 2, 3, 4, 5], add = 0, shift = 4>} : (tensor<4x8xi8>, tensor<8x5xi8>) -> tensor<4x5xi8>
  // CHECK-NEXT: %r = tinyattn.add %q, %y {requant = #tinyattn.requant<mul = 1, add = 0, shift = 1>} : (tensor<4x5xi8>, tensor<4x5xi8>) -> tensor<4x5xi8>
  %r = tinyattn.add %q, %y {requant = #tinyattn.requant<mul = 1, add = 0, shift = 1>} : (tensor<4x5xi8>, tensor<4x5xi8>) -> tensor<4x5xi8>
  // CHECK-NEXT: %relu = tinyattn.relu %r : (tensor<4x5xi8>) -> tensor<4x5xi8>
  %relu = tinyattn.relu %r : (tensor<4x5xi8>) -> tensor<4x5xi8>
  // CHECK-NEXT: %p = tinyattn.softmax %relu {isoftmax = #tinyattn.isoftmax<coeff_a = 1, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256>} : (tensor<4x5xi8>) -> tensor<4x5xui8>
  %p = tinyattn.softmax %relu {isoftmax = #tinyattn.isoftmax<coeff_a = 1, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256>} : (tensor<4x5xi8>) -> tensor<4x5xui8>
  func.return %p : tensor<4x5xui8>
}

// x * m + a, m and a broadcast to x: per-row multipliers and a bias matrix on the accumulator,
// narrowed per tensor; a positional embedding added in f32.
// CHECK-LABEL: func.func @muladd
func.func @muladd(%acc: tensor<4x5xi32>, %rows: tensor<4x1xi32>, %c: tensor<4x5xi32>, %x: tensor<2x4x5xf32>, %pos: tensor<4x5xf32>, %one: tensor<1xf32>) -> (tensor<4x5xi8>, tensor<2x4x5xf32>) {
  // CHECK-NEXT: %y = tinyattn.muladd %acc, %rows, %c {requant = #tinyattn.requant<mul = 1, add = 0, shift = 8>} : (tensor<4x5xi32>, tensor<4x1xi32>, tensor<4x5xi32>) -> tensor<4x5xi8>
  // GENERIC: "tinyattn.muladd"(%acc, %rows, %c) <{requant = #tinyattn.requant<mul = 1, add = 0, shift = 8>}>
  %y = tinyattn.muladd %acc, %rows, %c {requant = #tinyattn.requant<mul = 1, add = 0, shift = 8>} : (tensor<4x5xi32>, tensor<4x1xi32>, tensor<4x5xi32>) -> tensor<4x5xi8>
  // CHECK-NEXT: %e = tinyattn.muladd %x, %one, %pos : (tensor<2x4x5xf32>, tensor<1xf32>, tensor<4x5xf32>) -> tensor<2x4x5xf32>
  %e = tinyattn.muladd %x, %one, %pos : (tensor<2x4x5xf32>, tensor<1xf32>, tensor<4x5xf32>) -> tensor<2x4x5xf32>
  func.return %y, %e : tensor<4x5xi8>, tensor<2x4x5xf32>
}

// A batched product of two activations, and the integer RMS norm.
// CHECK-LABEL: func.func @matmul_rmsnorm
func.func @matmul_rmsnorm(%a: tensor<2x3x4xi8>, %b: tensor<2x4x5xui8>, %m: tensor<4x5xf32>, %f: tensor<2x3x4xf32>, %w: tensor<4xi32>) -> (tensor<2x3x5xi8>, tensor<2x3x5xf32>, tensor<2x3x4xi32>) {
  // CHECK-NEXT: %y = tinyattn.matmul %a, %b {requant = #tinyattn.requant<mul = 3, add = 0, shift = 4>} : (tensor<2x3x4xi8>, tensor<2x4x5xui8>) -> tensor<2x3x5xi8>
  // GENERIC: "tinyattn.matmul"(%a, %b) <{requant = #tinyattn.requant<mul = 3, add = 0, shift = 4>}>
  %y = tinyattn.matmul %a, %b {requant = #tinyattn.requant<mul = 3, add = 0, shift = 4>} : (tensor<2x3x4xi8>, tensor<2x4x5xui8>) -> tensor<2x3x5xi8>
  // CHECK-NEXT: %z = tinyattn.matmul %f, %m : (tensor<2x3x4xf32>, tensor<4x5xf32>) -> tensor<2x3x5xf32>
  %z = tinyattn.matmul %f, %m : (tensor<2x3x4xf32>, tensor<4x5xf32>) -> tensor<2x3x5xf32>
  // CHECK-NEXT: %n = tinyattn.rmsnorm %a, %w {shift = 16 : i64} : (tensor<2x3x4xi8>, tensor<4xi32>) -> tensor<2x3x4xi32>
  // GENERIC: "tinyattn.rmsnorm"(%a, %w) <{shift = 16 : i64}>
  %n = tinyattn.rmsnorm %a, %w {shift = 16 : i64} : (tensor<2x3x4xi8>, tensor<4xi32>) -> tensor<2x3x4xi32>
  func.return %y, %z, %n : tensor<2x3x5xi8>, tensor<2x3x5xf32>, tensor<2x3x4xi32>
}

// A convolutional tokenizer: conv (integer, narrowed per output channel), max pooling, and the tokens
// transposed to [S, E].
// CHECK-LABEL: func.func @tokenizer
func.func @tokenizer(%x: tensor<3x8x8xi8>, %w: tensor<4x3x3x3xi8>, %b: tensor<4xi32>, %f: tensor<2x10xf32>, %wf: tensor<4x1x3xf32>) -> (tensor<16x4xi8>, tensor<4x8xf32>) {
  // CHECK-NEXT: %c = tinyattn.conv %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, groups = 1 : i64, requant = #tinyattn.requant<mul = [3, 5, 7, 2], add = [0, 1, 0, -1], shift = 8>} : (tensor<3x8x8xi8>, tensor<4x3x3x3xi8>, tensor<4xi32>) -> tensor<4x8x8xi8>
  // GENERIC: "tinyattn.conv"(%x, %w, %b) <{strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, groups = 1 : i64, requant = #tinyattn.requant<mul = [3, 5, 7, 2], add = [0, 1, 0, -1], shift = 8>}>
  %c = tinyattn.conv %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, groups = 1 : i64, requant = #tinyattn.requant<mul = [3, 5, 7, 2], add = [0, 1, 0, -1], shift = 8>} : (tensor<3x8x8xi8>, tensor<4x3x3x3xi8>, tensor<4xi32>) -> tensor<4x8x8xi8>
  // CHECK-NEXT: %p = tinyattn.maxpool %c {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<4x8x8xi8>) -> tensor<4x4x4xi8>
  %p = tinyattn.maxpool %c {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<4x8x8xi8>) -> tensor<4x4x4xi8>
  %r = tinyattn.reshape %p : (tensor<4x4x4xi8>) -> tensor<4x16xi8>
  // CHECK: %t = tinyattn.transpose %r {perm = array<i64: 1, 0>} : (tensor<4x16xi8>) -> tensor<16x4xi8>
  %t = tinyattn.transpose %r {perm = array<i64: 1, 0>} : (tensor<4x16xi8>) -> tensor<16x4xi8>
  // A 1-D depthwise f32 conv.
  // CHECK-NEXT: %d = tinyattn.conv %f, %wf {strides = array<i64: 1>, pads = array<i64: 0, 0>, groups = 2 : i64} : (tensor<2x10xf32>, tensor<4x1x3xf32>) -> tensor<4x8xf32>
  %d = tinyattn.conv %f, %wf {strides = array<i64: 1>, pads = array<i64: 0, 0>, groups = 2 : i64} : (tensor<2x10xf32>, tensor<4x1x3xf32>) -> tensor<4x8xf32>
  func.return %t, %d : tensor<16x4xi8>, tensor<4x8xf32>
}

// f32 elementwise functions; a binary one's operands broadcast to the result.
// CHECK-LABEL: func.func @float_maps
func.func @float_maps(%x: tensor<4x8xf32>, %g: tensor<4x1xf32>) -> tensor<4x8xf32> {
  // CHECK-NEXT: %s = tinyattn.map "sigmoid" %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
  // GENERIC: "tinyattn.map"(%x) <{fn = "sigmoid"}> : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %s = tinyattn.map "sigmoid" %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
  // CHECK-NEXT: %m = tinyattn.map "mul" %g, %s : (tensor<4x1xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %m = tinyattn.map "mul" %g, %s : (tensor<4x1xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %m : tensor<4x8xf32>
}

// A class token joined before the tokens, then its row sliced out again.
// CHECK-LABEL: func.func @class_token
func.func @class_token(%x: tensor<4x6xi8>, %cls: tensor<1x6xi8>) -> tensor<1x6xi8> {
  // CHECK-NEXT: %t = tinyattn.concat %cls, %x {axis = 0 : i64} : (tensor<1x6xi8>, tensor<4x6xi8>) -> tensor<5x6xi8>
  // GENERIC: "tinyattn.concat"(%cls, %x) <{axis = 0 : i64}>
  %t = tinyattn.concat %cls, %x {axis = 0 : i64} : (tensor<1x6xi8>, tensor<4x6xi8>) -> tensor<5x6xi8>
  // CHECK-NEXT: %c = tinyattn.slice %t {starts = array<i64: 0, 0>, steps = array<i64: 1, 1>} : (tensor<5x6xi8>) -> tensor<1x6xi8>
  %c = tinyattn.slice %t {starts = array<i64: 0, 0>, steps = array<i64: 1, 1>} : (tensor<5x6xi8>) -> tensor<1x6xi8>
  func.return %c : tensor<1x6xi8>
}

// ITA's integer softmax (QuantLib's ITAMax).
// CHECK-LABEL: func.func @itamax
func.func @itamax(%x: tensor<4x5xi8>) -> tensor<4x5xui8> {
  // CHECK-NEXT: %p = tinyattn.softmax %x {itamax} : (tensor<4x5xi8>) -> tensor<4x5xui8>
  // GENERIC: "tinyattn.softmax"(%x) <{itamax}> : (tensor<4x5xi8>) -> tensor<4x5xui8>
  %p = tinyattn.softmax %x {itamax} : (tensor<4x5xi8>) -> tensor<4x5xui8>
  func.return %p : tensor<4x5xui8>
}

// A function of an 8-bit tensor as a table (its result type is the table's); a requant of an
// 8-bit tensor widens it first.
// CHECK-LABEL: func.func @tables
func.func @tables(%x: tensor<4x5xi8>, %u: tensor<4x5xui8>, %t8: tensor<256xi8>, %t32: tensor<256xi32>) -> (tensor<4x5xi8>, tensor<4x5xi32>, tensor<4x5xui8>) {
  // CHECK-NEXT: %a = tinyattn.lookup %x, %t8 : (tensor<4x5xi8>, tensor<256xi8>) -> tensor<4x5xi8>
  // GENERIC: "tinyattn.lookup"(%x, %t8) : (tensor<4x5xi8>, tensor<256xi8>) -> tensor<4x5xi8>
  %a = tinyattn.lookup %x, %t8 : (tensor<4x5xi8>, tensor<256xi8>) -> tensor<4x5xi8>
  // CHECK-NEXT: %b = tinyattn.lookup %u, %t32 : (tensor<4x5xui8>, tensor<256xi32>) -> tensor<4x5xi32>
  %b = tinyattn.lookup %u, %t32 : (tensor<4x5xui8>, tensor<256xi32>) -> tensor<4x5xi32>
  // CHECK-NEXT: %c = tinyattn.requant %x {requant = #tinyattn.requant<mul = [1, 2, 3, 4, 5], add = 0, shift = 1>} : (tensor<4x5xi8>) -> tensor<4x5xui8>
  %c = tinyattn.requant %x {requant = #tinyattn.requant<mul = [1, 2, 3, 4, 5], add = 0, shift = 1>} : (tensor<4x5xi8>) -> tensor<4x5xui8>
  func.return %a, %b, %c : tensor<4x5xi8>, tensor<4x5xi32>, tensor<4x5xui8>
}

// Integer layer norm, GELU and mean (I-BERT): an int32 result, or 8 bits with a requant.
// CHECK-LABEL: func.func @norm_gelu_mean_int8
func.func @norm_gelu_mean_int8(%x: tensor<4x8xi8>, %g: tensor<8xi32>, %b: tensor<8xi32>) -> tensor<8xi8> {
  // CHECK-NEXT: %n = tinyattn.layernorm %x, %g, %b {epsilon = 1.000000e-05 : f32, ilayernorm = #tinyattn.ilayernorm<shift = 0, eps = 12>, requant = #tinyattn.requant<mul = 1, add = 0, shift = 10>} : (tensor<4x8xi8>, tensor<8xi32>, tensor<8xi32>) -> tensor<4x8xi8>
  // GENERIC: "tinyattn.layernorm"(%x, %g, %b) <{epsilon = 1.000000e-05 : f32, ilayernorm = #tinyattn.ilayernorm<shift = 0, eps = 12>, requant = #tinyattn.requant<mul = 1, add = 0, shift = 10>}>
  %n = tinyattn.layernorm %x, %g, %b {epsilon = 1.0e-05 : f32, ilayernorm = #tinyattn.ilayernorm<shift = 0, eps = 12>, requant = #tinyattn.requant<mul = 1, add = 0, shift = 10>} : (tensor<4x8xi8>, tensor<8xi32>, tensor<8xi32>) -> tensor<4x8xi8>
  // CHECK-NEXT: %wide = tinyattn.layernorm %x, %g, %b {epsilon = 1.000000e-05 : f32, ilayernorm = #tinyattn.ilayernorm<shift = 2, eps = 1>} : (tensor<4x8xi8>, tensor<8xi32>, tensor<8xi32>) -> tensor<4x8xi32>
  %wide = tinyattn.layernorm %x, %g, %b {epsilon = 1.0e-05 : f32, ilayernorm = #tinyattn.ilayernorm<shift = 2, eps = 1>} : (tensor<4x8xi8>, tensor<8xi32>, tensor<8xi32>) -> tensor<4x8xi32>
  // QuantLib's iLayerNorm, clipped to 8 bits.
  // CHECK-NEXT: %q = tinyattn.layernorm %x, %g, %b {epsilon = 0.000000e+00 : f32, ilayernorm = #tinyattn.quantlib_layernorm<shift = 24>, requant = #tinyattn.requant<mul = 1, add = 0, shift = 0>} : (tensor<4x8xi8>, tensor<8xi32>, tensor<8xi32>) -> tensor<4x8xi8>
  // GENERIC: "tinyattn.layernorm"(%x, %g, %b) <{epsilon = 0.000000e+00 : f32, ilayernorm = #tinyattn.quantlib_layernorm<shift = 24>, requant = #tinyattn.requant<mul = 1, add = 0, shift = 0>}>
  %q = tinyattn.layernorm %x, %g, %b {epsilon = 0.0 : f32, ilayernorm = #tinyattn.quantlib_layernorm<shift = 24>, requant = #tinyattn.requant<mul = 1, add = 0, shift = 0>} : (tensor<4x8xi8>, tensor<8xi32>, tensor<8xi32>) -> tensor<4x8xi8>
  // CHECK-NEXT: %a = tinyattn.gelu %n {igelu = #tinyattn.igelu<b = -80, one = 6980>, requant = #tinyattn.requant<mul = 3, add = 0, shift = 16>} : (tensor<4x8xi8>) -> tensor<4x8xi8>
  // GENERIC: "tinyattn.gelu"(%n) <{igelu = #tinyattn.igelu<b = -80, one = 6980>, requant = #tinyattn.requant<mul = 3, add = 0, shift = 16>}>
  %a = tinyattn.gelu %n {igelu = #tinyattn.igelu<b = -80, one = 6980>, requant = #tinyattn.requant<mul = 3, add = 0, shift = 16>} : (tensor<4x8xi8>) -> tensor<4x8xi8>
  // CHECK-NEXT: %acc = tinyattn.gelu %n {igelu = #tinyattn.igelu<b = -80, one = 6980>} : (tensor<4x8xi8>) -> tensor<4x8xi32>
  %acc = tinyattn.gelu %n {igelu = #tinyattn.igelu<b = -80, one = 6980>} : (tensor<4x8xi8>) -> tensor<4x8xi32>
  // CHECK-NEXT: %m = tinyattn.mean %a {axis = 0 : i64, requant = #tinyattn.requant<mul = 1, add = 0, shift = 2>} : (tensor<4x8xi8>) -> tensor<8xi8>
  %m = tinyattn.mean %a {axis = 0 : i64, requant = #tinyattn.requant<mul = 1, add = 0, shift = 2>} : (tensor<4x8xi8>) -> tensor<8xi8>
  // CHECK-NEXT: %rows = tinyattn.mean %a {axis = 1 : i64} : (tensor<4x8xi8>) -> tensor<4x1xi32>
  %rows = tinyattn.mean %a {axis = 1 : i64} : (tensor<4x8xi8>) -> tensor<4x1xi32>
  func.return %m : tensor<8xi8>
}
