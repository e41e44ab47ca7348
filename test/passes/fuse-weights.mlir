// RUN: %tinyattn-opt --split-input-file --fuse-weights="remarks=true" %s 2>&1 | %filecheck %s --check-prefixes=CHECK,AUTO
// RUN: %tinyattn-opt --split-input-file --fuse-weights="mode=always" %s | %filecheck %s --check-prefixes=CHECK,ALWAYS
// RUN: %tinyattn-opt --split-input-file --fuse-weights="mode=never remarks=true" %s 2>&1 | %filecheck %s --check-prefix=NEVER
// RUN: not %tinyattn-opt --fuse-weights="mode=sometimes" %s 2>&1 | %filecheck %s --check-prefix=BADMODE

// E = P = 4: fusing saves parameters and MACs, so auto fuses. With Wq = Wk = 0.5, bq = 0.1 and
// scale 0.5: Wqk = 0.5 * 4 * 0.25 = 0.5 and bqk = 0.5 * 4 * 0.1 * 0.5 = 0.1; bk is dropped.
func.func @pays(%x: tensor<6x4xf32>) -> tensor<6x4xf32> {
  %w = arith.constant dense<0.5> : tensor<2x4x4xf32>
  %bq = arith.constant dense<0.1> : tensor<2x4xf32>
  %bk = arith.constant dense<0.3> : tensor<2x4xf32>
  %wo = arith.constant dense<0.25> : tensor<2x4x4xf32>
  %bo = arith.constant dense<0.0> : tensor<4xf32>
  %a = tinyattn.mhsa %x q(%w, %bq) k(%w, %bk) v(%w, %bq) o(%wo, %bo) {num_heads = 2 : i64, scale = 0.5 : f32} : (tensor<6x4xf32>, tensor<2x4x4xf32>, tensor<2x4xf32>, tensor<2x4x4xf32>, tensor<2x4xf32>, tensor<2x4x4xf32>, tensor<2x4xf32>, tensor<2x4x4xf32>, tensor<4xf32>) -> tensor<6x4xf32>
  func.return %a : tensor<6x4xf32>
}
// AUTO: remark: fuse-weights: tinyattn.mhsa %a: fused: MACs 1,344 -> 1,152, params 156 -> 116 (S=6 E=4 P=4 H=2)
// CHECK-LABEL: func.func @pays
// CHECK-NOT:   %bk
// CHECK:       %wqk = arith.constant dense<5.000000e-01> : tensor<2x4x4xf32>
// CHECK-NEXT:  %bqk = arith.constant dense<1.000000e-01> : tensor<2x4xf32>
// CHECK-NEXT:  %a = tinyattn.fused_mhsa %x qk(%wqk, %bqk) v(%w, %bq) o(%wo, %bo) {num_heads = 2 : i64} : (tensor<6x4xf32>, tensor<2x4x4xf32>, tensor<2x4xf32>, tensor<2x4x4xf32>, tensor<2x4xf32>, tensor<2x4x4xf32>, tensor<4xf32>) -> tensor<6x4xf32>
// NEVER: remark: fuse-weights: tinyattn.mhsa %a: not fused: mode=never

// -----

// E = 8, P = 1 (the ECG shape's ratio): fusing would multiply the score stage, auto keeps it.
func.func @does_not_pay(%x: tensor<6x8xf32>) -> tensor<6x8xf32> {
  %w = arith.constant dense<0.5> : tensor<2x8x1xf32>
  %b = arith.constant dense<0.1> : tensor<2x1xf32>
  %wo = arith.constant dense<0.25> : tensor<2x1x8xf32>
  %bo = arith.constant dense<0.0> : tensor<8xf32>
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, scale = 1.0 : f32} : (tensor<6x8xf32>, tensor<2x8x1xf32>, tensor<2x1xf32>, tensor<2x8x1xf32>, tensor<2x1xf32>, tensor<2x8x1xf32>, tensor<2x1xf32>, tensor<2x1x8xf32>, tensor<8xf32>) -> tensor<6x8xf32>
  func.return %a : tensor<6x8xf32>
}
// AUTO: remark: fuse-weights: tinyattn.mhsa %a: not fused, it does not pay: MACs 528 -> 1,608, params 78 -> 186 (S=6 E=8 P=1 H=2)
// CHECK-LABEL: func.func @does_not_pay
// AUTO:        tinyattn.mhsa
// ALWAYS:      tinyattn.fused_mhsa

// -----

// Without softmax the key bias does not cancel: never fused, whatever the mode.
func.func @no_softmax(%x: tensor<6x4xf32>) -> tensor<6x4xf32> {
  %w = arith.constant dense<0.5> : tensor<2x4x4xf32>
  %b = arith.constant dense<0.1> : tensor<2x4xf32>
  %wo = arith.constant dense<0.25> : tensor<2x4x4xf32>
  %bo = arith.constant dense<0.0> : tensor<4xf32>
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, scale = 0.5 : f32, normalization = "none"} : (tensor<6x4xf32>, tensor<2x4x4xf32>, tensor<2x4xf32>, tensor<2x4x4xf32>, tensor<2x4xf32>, tensor<2x4x4xf32>, tensor<2x4xf32>, tensor<2x4x4xf32>, tensor<4xf32>) -> tensor<6x4xf32>
  func.return %a : tensor<6x4xf32>
}
// AUTO: remark: fuse-weights: tinyattn.mhsa %a: not fused: without softmax the key bias does not cancel
// CHECK-LABEL: func.func @no_softmax
// CHECK:       tinyattn.mhsa

// -----

// Weights that are not constants cannot be fused offline.
func.func @runtime_weights(%x: tensor<6x4xf32>, %w: tensor<2x4x4xf32>, %b: tensor<2x4xf32>, %wo: tensor<2x4x4xf32>, %bo: tensor<4xf32>) -> tensor<6x4xf32> {
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, scale = 0.5 : f32} : (tensor<6x4xf32>, tensor<2x4x4xf32>, tensor<2x4xf32>, tensor<2x4x4xf32>, tensor<2x4xf32>, tensor<2x4x4xf32>, tensor<2x4xf32>, tensor<2x4x4xf32>, tensor<4xf32>) -> tensor<6x4xf32>
  func.return %a : tensor<6x4xf32>
}
// AUTO: remark: fuse-weights: tinyattn.mhsa %a: not fused: Wq, bq and Wk must be constants
// CHECK-LABEL: func.func @runtime_weights
// CHECK:       tinyattn.mhsa

// BADMODE: tinyattn-opt: error: fuse-weights: mode must be one of auto, always, never, got 'sometimes'
