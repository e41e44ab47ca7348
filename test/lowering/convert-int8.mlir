// RUN: %tinyattn-opt --split-input-file --verify-diagnostics --convert-tinyattn-to-kernels --convert-kernels-to-loops %s | %filecheck %s

// An unsigned input is zero-extended, the i8 weights sign-extended; products and sums are i32.
// A per-channel requantization reads its multipliers and offsets (add + 2^(shift-1)) from
// globals, shifts arithmetically and clips to the unsigned range before truncating to 8 bits.
func.func @linear(%x: tensor<2x3xui8>) -> tensor<2x4xui8> {
  %w = arith.constant dense<[[1, -2, 3, -4], [5, 6, -7, 8], [-9, 10, 11, 12]]> : tensor<3x4xi8>
  %b = arith.constant dense<[100, -200, 300, -400]> : tensor<4xi32>
  %y = tinyattn.linear %x, %w, %b {requant = #tinyattn.requant<mul = [3, 5, 7, 9], add = [0, 1, 2, 3], shift = 4>} : (tensor<2x3xui8>, tensor<3x4xi8>, tensor<4xi32>) -> tensor<2x4xui8>
  func.return %y : tensor<2x4xui8>
}

// CHECK:      "memref.global"() <{sym_name = "requant_mul", type = memref<4xi32>, initial_value = dense<[3, 5, 7, 9]> : tensor<4xi32>
// CHECK-NEXT: "memref.global"() <{sym_name = "requant_offset", type = memref<4xi32>, initial_value = dense<[8, 9, 10, 11]> : tensor<4xi32>
// CHECK-LABEL: func.func @linear(%x: memref<2x3xi8>, %out: memref<2x4xi8>)
// CHECK:          %[[BIAS:.*]] = memref.load %b[%[[COL:[0-9a-z_]+]]] : memref<4xi32>
// CHECK:          %[[ACC:.*]] = scf.for {{.*}} iter_args(%[[SUM:.*]] = %[[BIAS]]) -> (i32) {
// CHECK-NEXT:       %[[X:.*]] = memref.load %x[{{.*}}] : memref<2x3xi8>
// CHECK-NEXT:       %[[XW:.*]] = arith.extui %[[X]] : i8 to i32
// CHECK-NEXT:       %[[W:.*]] = memref.load %w[{{.*}}] : memref<3x4xi8>
// CHECK-NEXT:       %[[WW:.*]] = arith.extsi %[[W]] : i8 to i32
// CHECK-NEXT:       %[[P:.*]] = arith.muli %[[XW]], %[[WW]] : i32
// CHECK-NEXT:       %[[NEXT:.*]] = arith.addi %[[SUM]], %[[P]] : i32
// CHECK-NEXT:       scf.yield %[[NEXT]] : i32
// CHECK:          %[[MUL:.*]] = memref.load %requant_mul[%[[COL]]] : memref<4xi32>
// CHECK-NEXT:     %[[T0:.*]] = arith.muli %[[ACC]], %[[MUL]] : i32
// CHECK-NEXT:     %[[OFF:.*]] = memref.load %requant_offset[%[[COL]]] : memref<4xi32>
// CHECK-NEXT:     %[[T1:.*]] = arith.addi %[[T0]], %[[OFF]] : i32
// CHECK-NEXT:     %[[SHIFT:.*]] = arith.constant 4 : i32
// CHECK-NEXT:     %[[Q:.*]] = arith.shrsi %[[T1]], %[[SHIFT]] : i32
// CHECK-NEXT:     %[[LOW:.*]] = arith.constant 0 : i32
// CHECK-NEXT:     %[[Q1:.*]] = arith.maxsi %[[Q]], %[[LOW]] : i32
// CHECK-NEXT:     %[[HIGH:.*]] = arith.constant 255 : i32
// CHECK-NEXT:     %[[Q2:.*]] = arith.minsi %[[Q1]], %[[HIGH]] : i32
// CHECK-NEXT:     %[[Y:.*]] = arith.trunci %[[Q2]] : i32 to i8
// CHECK-NEXT:     memref.store %[[Y]], %out[{{.*}}] : memref<2x4xi8>

// -----

// i8 + ui8 in i32 (no requant: the result is the i32 sum), then a per-tensor requantization
// (mul 1, add 0, shift 1: x / 2 rounded half up, so the offset is 1) to i8 and a relu.
func.func @add_requant_relu(%a: tensor<2x3xi8>, %b: tensor<2x3xui8>) -> tensor<2x3xi8> {
  %s = tinyattn.add %a, %b : (tensor<2x3xi8>, tensor<2x3xui8>) -> tensor<2x3xi32>
  %q = tinyattn.requant %s {requant = #tinyattn.requant<mul = 1, add = 0, shift = 1>} : (tensor<2x3xi32>) -> tensor<2x3xi8>
  %r = tinyattn.relu %q : (tensor<2x3xi8>) -> tensor<2x3xi8>
  func.return %r : tensor<2x3xi8>
}

// CHECK-LABEL: func.func @add_requant_relu(%a: memref<2x3xi8>, %b: memref<2x3xi8>, %out: memref<2x3xi8>)
// CHECK:      %s = memref.alloc() {alignment = 16 : i64} : memref<2x3xi32>
// CHECK:        %[[A:.*]] = arith.extsi %{{.*}} : i8 to i32
// CHECK:        %[[B:.*]] = arith.extui %{{.*}} : i8 to i32
// CHECK-NEXT:   %[[SUM:.*]] = arith.addi %[[A]], %[[B]] : i32
// CHECK-NEXT:   memref.store %[[SUM]], %{{.*}} : memref<1x6xi32>
// CHECK:      %q = memref.alloc() {alignment = 16 : i64} : memref<2x3xi8>
// CHECK:        %[[S:.*]] = memref.load %{{.*}} : memref<1x6xi32>
// CHECK-NEXT:   %[[ONE:.*]] = arith.constant 1 : i32
// CHECK-NEXT:   %[[T0:.*]] = arith.muli %[[S]], %[[ONE]] : i32
// CHECK-NEXT:   %[[HALF:.*]] = arith.constant 1 : i32
// CHECK-NEXT:   %[[T1:.*]] = arith.addi %[[T0]], %[[HALF]] : i32
// CHECK-NEXT:   %[[SHIFT:.*]] = arith.constant 1 : i32
// CHECK-NEXT:   %[[T2:.*]] = arith.shrsi %[[T1]], %[[SHIFT]] : i32
// CHECK-NEXT:   %[[LOW:.*]] = arith.constant -128 : i32
// CHECK-NEXT:   %[[T3:.*]] = arith.maxsi %[[T2]], %[[LOW]] : i32
// CHECK-NEXT:   %[[HIGH:.*]] = arith.constant 127 : i32
// CHECK-NEXT:   %[[T4:.*]] = arith.minsi %[[T3]], %[[HIGH]] : i32
// CHECK-NEXT:   %[[Y:.*]] = arith.trunci %[[T4]] : i32 to i8
// CHECK-NEXT:   memref.store %[[Y]], %{{.*}} : memref<1x6xi8>
// CHECK:      memref.dealloc %s
// CHECK:        %[[QW:.*]] = arith.extsi %{{.*}} : i8 to i32
// CHECK-NEXT:   %[[ZERO:.*]] = arith.constant 0 : i32
// CHECK-NEXT:   %[[R:.*]] = arith.maxsi %[[QW]], %[[ZERO]] : i32
// CHECK-NEXT:   %[[RN:.*]] = arith.trunci %[[R]] : i32 to i8

// -----

// Integer softmax, row by row: the row maximum, then per element the exponential
// e = (a (z log2 - (max - x) + b)^2 + c) >> z with z = min((max - x) / log2, 31), read from a
// 256-entry table computed at compile time (max - x is in [0, 255]), kept in an i32 scratch row
// and summed, then e (n_levels - 1) / sum with an unsigned division.
func.func @isoftmax(%x: tensor<3x5xi8>) -> tensor<3x5xui8> {
  %y = tinyattn.softmax %x {isoftmax = #tinyattn.isoftmax<coeff_a = 1, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256>} : (tensor<3x5xi8>) -> tensor<3x5xui8>
  func.return %y : tensor<3x5xui8>
}

// e for max - x = 0, 1, 2: 45528, 45183, 44840 (0xB1D8, 0xB07F, 0xAF28, little-endian)
// CHECK:      "memref.global"() <{sym_name = "isoftmax_exp", type = memref<256xi32>, initial_value = dense<"0xD8B100007FB0000028AF0000
// CHECK-LABEL: func.func @isoftmax(%x: memref<3x5xi8>, %out: memref<3x5xi8>)
// CHECK:      %[[E:.*]] = memref.alloc() {alignment = 16 : i64} : memref<5xi32>
// CHECK:        %[[LOWEST:.*]] = arith.constant -128 : i32
// CHECK:        %[[PEAK:.*]] = scf.for {{.*}} iter_args(%[[M:.*]] = %[[LOWEST]]) -> (i32) {
// CHECK:          arith.maxsi %[[M]], %{{.*}} : i32
// CHECK:        %[[SUM:.*]] = scf.for %[[J:[0-9a-z_]+]] = {{.*}} -> (i32) {
// CHECK:          %[[X:.*]] = arith.extsi %{{.*}} : i8 to i32
// CHECK-NEXT:     %[[NEG:.*]] = arith.subi %[[PEAK]], %[[X]] : i32
// CHECK-NEXT:     %[[AT:.*]] = arith.index_cast %[[NEG]] : i32 to index
// CHECK-NEXT:     %[[EXP:.*]] = memref.load %isoftmax_exp[%[[AT]]] : memref<256xi32>
// CHECK-NEXT:     memref.store %[[EXP]], %[[E]][%[[J]]] : memref<5xi32>
// CHECK-NEXT:     arith.addi %{{.*}}, %[[EXP]] : i32
// CHECK:          %[[EJ:.*]] = memref.load %[[E]][%{{.*}}] : memref<5xi32>
// CHECK-NEXT:     %[[LEVELS:.*]] = arith.constant 255 : i32
// CHECK-NEXT:     %[[SCALED:.*]] = arith.muli %[[EJ]], %[[LEVELS]] : i32
// CHECK-NEXT:     %[[P:.*]] = arith.divui %[[SCALED]], %[[SUM]] : i32
// CHECK-NEXT:     %[[PN:.*]] = arith.trunci %[[P]] : i32 to i8
// CHECK-NEXT:     memref.store %[[PN]], %out[%{{.*}}, %{{.*}}] : memref<3x5xi8>
// CHECK:      memref.dealloc %[[E]]

// -----

// Integer GELU, elementwise in i32: |x| by a select, d = min(|x|, -b) + b, L = one - d^2,
// erf = sign(x) L by a select (x = 0 gives 0 either way), x ((one + erf) >> 1), requantized.
func.func @igelu(%x: tensor<4x6xi8>) -> tensor<4x6xi8> {
  %y = tinyattn.gelu %x {igelu = #tinyattn.igelu<b = -40, one = 3000>, requant = #tinyattn.requant<mul = 3, add = 0, shift = 12>} : (tensor<4x6xi8>) -> tensor<4x6xi8>
  func.return %y : tensor<4x6xi8>
}

// CHECK-LABEL: func.func @igelu(%x: memref<4x6xi8>, %out: memref<4x6xi8>)
// CHECK:        %[[X:.*]] = arith.extsi %{{.*}} : i8 to i32
// CHECK-NEXT:   %[[ZERO:.*]] = arith.constant 0 : i32
// CHECK-NEXT:   %[[NEG:.*]] = arith.cmpi slt, %[[X]], %[[ZERO]] : i32
// CHECK-NEXT:   %[[MX:.*]] = arith.subi %[[ZERO]], %[[X]] : i32
// CHECK-NEXT:   %[[ABS:.*]] = arith.select %[[NEG]], %[[MX]], %[[X]] : i32
// CHECK-NEXT:   %[[MINUS_B:.*]] = arith.constant 40 : i32
// CHECK-NEXT:   %[[CLAMPED:.*]] = arith.minsi %[[ABS]], %[[MINUS_B]] : i32
// CHECK-NEXT:   %[[B:.*]] = arith.constant -40 : i32
// CHECK-NEXT:   %[[D:.*]] = arith.addi %[[CLAMPED]], %[[B]] : i32
// CHECK-NEXT:   %[[ONE:.*]] = arith.constant 3000 : i32
// CHECK-NEXT:   %[[D2:.*]] = arith.muli %[[D]], %[[D]] : i32
// CHECK-NEXT:   %[[L:.*]] = arith.subi %[[ONE]], %[[D2]] : i32
// CHECK-NEXT:   %[[ML:.*]] = arith.subi %[[ZERO]], %[[L]] : i32
// CHECK-NEXT:   %[[ERF:.*]] = arith.select %[[NEG]], %[[ML]], %[[L]] : i32
// CHECK-NEXT:   %[[ONE2:.*]] = arith.constant 3000 : i32
// CHECK-NEXT:   %[[SUM:.*]] = arith.addi %[[ONE2]], %[[ERF]] : i32
// CHECK-NEXT:   %[[C1:.*]] = arith.constant 1 : i32
// CHECK-NEXT:   %[[HALF:.*]] = arith.shrsi %[[SUM]], %[[C1]] : i32
// CHECK-NEXT:   %[[G:.*]] = arith.muli %[[X]], %[[HALF]] : i32
// CHECK-NEXT:   %[[MUL:.*]] = arith.constant 3 : i32
// CHECK-NEXT:   arith.muli %[[G]], %[[MUL]] : i32
// CHECK:        arith.shrsi
// CHECK:        arith.trunci %{{.*}} : i32 to i8
// CHECK-NOT:  {{: i64$|to i64}}

// -----

// Integer layer norm, row by row: the i32 sum; c = (E x - sum) >> shift squared and summed from
// eps; std by the integer Newton square root in an scf.while, started at 2^ceil(bits/2) from
// ctlz and stopped when a step does not decrease; then trunc(c gamma / std) + beta.
func.func @ilayernorm(%x: tensor<3x8xui8>) -> tensor<3x8xi32> {
  %g = arith.constant dense<[1, 2, 3, 4, 5, 6, 7, 8]> : tensor<8xi32>
  %b = arith.constant dense<-3> : tensor<8xi32>
  %y = tinyattn.layernorm %x, %g, %b {epsilon = 1.0e-05 : f32, ilayernorm = #tinyattn.ilayernorm<shift = 1, eps = 77>} : (tensor<3x8xui8>, tensor<8xi32>, tensor<8xi32>) -> tensor<3x8xi32>
  func.return %y : tensor<3x8xi32>
}

// CHECK-LABEL: func.func @ilayernorm(%x: memref<3x8xi8>, %out: memref<3x8xi32>)
// CHECK:        %[[TOTAL:.*]] = scf.for {{.*}} -> (i32) {
// CHECK:          arith.extui %{{.*}} : i8 to i32
// CHECK:        %[[EPS:.*]] = arith.constant 77 : i32
// CHECK:        %[[SQUARES:.*]] = scf.for {{.*}} iter_args(%[[ACC:.*]] = %[[EPS]]) -> (i32) {
// CHECK:          %[[XS:.*]] = arith.extui %{{.*}} : i8 to i32
// CHECK-NEXT:     %[[E:.*]] = arith.constant 8 : i32
// CHECK-NEXT:     %[[EX:.*]] = arith.muli %[[XS]], %[[E]] : i32
// CHECK-NEXT:     %[[SPREAD:.*]] = arith.subi %[[EX]], %[[TOTAL]] : i32
// CHECK-NEXT:     %[[SHIFT:.*]] = arith.constant 1 : i32
// CHECK-NEXT:     %[[C:.*]] = arith.shrsi %[[SPREAD]], %[[SHIFT]] : i32
// CHECK-NEXT:     %[[C2:.*]] = arith.muli %[[C]], %[[C]] : i32
// CHECK-NEXT:     arith.addi %[[ACC]], %[[C2]] : i32
// CHECK:        %[[ONE:.*]] = arith.constant 1 : i32
// CHECK-NEXT:   %[[C33:.*]] = arith.constant 33 : i32
// CHECK-NEXT:   %[[LZ:.*]] = math.ctlz %[[SQUARES]] : i32
// CHECK-NEXT:   %[[BITS1:.*]] = arith.subi %[[C33]], %[[LZ]] : i32
// CHECK-NEXT:   %[[HALF:.*]] = arith.shrsi %[[BITS1]], %[[ONE]] : i32
// CHECK-NEXT:   %[[START:.*]] = arith.shli %[[ONE]], %[[HALF]] : i32
// CHECK-NEXT:   %{{.*}}, %[[STD:.*]] = scf.while (%[[R:.*]] = %[[START]]) : (i32) -> (i32, i32) {
// CHECK-NEXT:     %[[Q:.*]] = arith.divui %[[SQUARES]], %[[R]] : i32
// CHECK-NEXT:     %[[RQ:.*]] = arith.addi %[[R]], %[[Q]] : i32
// CHECK-NEXT:     %[[STEP:.*]] = arith.shrsi %[[RQ]], %[[ONE]] : i32
// CHECK-NEXT:     %[[LESS:.*]] = arith.cmpi slt, %[[STEP]], %[[R]] : i32
// CHECK-NEXT:     scf.condition(%[[LESS]]) %[[STEP]], %[[R]] : i32, i32
// CHECK-NEXT:   } do {
// CHECK-NEXT:   ^{{.*}}(%[[NEXT:.*]]: i32, %{{.*}}: i32):
// CHECK-NEXT:     scf.yield %[[NEXT]] : i32
// CHECK-NEXT:   }
// CHECK:          %[[CN:.*]] = arith.shrsi %{{.*}}, %{{.*}} : i32
// CHECK-NEXT:     %[[GAMMA:.*]] = memref.load %g[%[[J:.*]]] : memref<8xi32>
// CHECK-NEXT:     %[[SCALED:.*]] = arith.muli %[[CN]], %[[GAMMA]] : i32
// CHECK-NEXT:     %[[NORM:.*]] = arith.divsi %[[SCALED]], %[[STD]] : i32
// CHECK-NEXT:     %[[BETA:.*]] = memref.load %b[%[[J]]] : memref<8xi32>
// CHECK-NEXT:     %[[Y:.*]] = arith.addi %[[NORM]], %[[BETA]] : i32
// CHECK-NEXT:     memref.store %[[Y]], %out[%{{.*}}, %[[J]]] : memref<3x8xi32>
// CHECK-NOT:  {{: i64$|to i64}}

// -----

// Attention is scheduled by a tiling pass (depth-first-tile, layerwise-tile) before this
// conversion; its kernel ops are tested with those passes.
func.func @mhsa(%x: tensor<3x4xi8>) -> tensor<3x4xi8> {
  %w = arith.constant dense<3> : tensor<2x4x2xi8>
  %b = arith.constant dense<-7> : tensor<2x2xi32>
  %wo = arith.constant dense<-5> : tensor<2x2x4xi8>
  %bo = arith.constant dense<11> : tensor<4xi32>
  %y = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, q_requant = #tinyattn.requant<mul = 1, add = 0, shift = 2>, k_requant = #tinyattn.requant<mul = 1, add = 0, shift = 2>, v_requant = #tinyattn.requant<mul = 1, add = 0, shift = 2>, score_requant = #tinyattn.requant<mul = [1, 2, 3], add = 0, shift = 3>, context_requant = #tinyattn.requant<mul = 1, add = 0, shift = 4>, out_requant = #tinyattn.requant<mul = 1, add = 0, shift = 5>, isoftmax = #tinyattn.isoftmax<coeff_a = 1, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256>} : (tensor<3x4xi8>, tensor<2x4x2xi8>, tensor<2x2xi32>, tensor<2x4x2xi8>, tensor<2x2xi32>, tensor<2x4x2xi8>, tensor<2x2xi32>, tensor<2x2x4xi8>, tensor<4xi32>) -> tensor<3x4xi8>
  func.return %y : tensor<3x4xi8>
}
// CHECK: 'tinyattn.mhsa' must be scheduled first: run depth-first-tile or layerwise-tile

// -----

// -----

// An integer softmax whose polynomial does not fit 32 bits is refused, not silently wrapped.
func.func @too_wide(%x: tensor<2x4xi8>) -> tensor<2x4xui8> {
  %y = tinyattn.softmax %x {isoftmax = #tinyattn.isoftmax<coeff_a = 100000, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256>} : (tensor<2x4xi8>) -> tensor<2x4xui8>
  func.return %y : tensor<2x4xui8>
}
// CHECK: integer softmax #tinyattn.isoftmax<coeff_a = 100000, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256> needs more than 32-bit arithmetic: a*(p + b)^2 + c leaves [0, 2^31)

// -----

// A per-channel requantization of an attention stage must have one value per channel.
func.func @channels(%x: tensor<3x4xi8>) -> tensor<3x4xi8> {
  %w = arith.constant dense<3> : tensor<1x4x2xi8>
  %b = arith.constant dense<-7> : tensor<1x2xi32>
  %wo = arith.constant dense<-5> : tensor<1x2x4xi8>
  %bo = arith.constant dense<11> : tensor<4xi32>
  %y = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 1 : i64, normalization = "none", q_requant = #tinyattn.requant<mul = [1, 2, 3], add = 0, shift = 2>, k_requant = #tinyattn.requant<mul = 1, add = 0, shift = 2>, v_requant = #tinyattn.requant<mul = 1, add = 0, shift = 2>, score_requant = #tinyattn.requant<mul = 1, add = 0, shift = 3>, context_requant = #tinyattn.requant<mul = 1, add = 0, shift = 4>, out_requant = #tinyattn.requant<mul = 1, add = 0, shift = 5>} : (tensor<3x4xi8>, tensor<1x4x2xi8>, tensor<1x2xi32>, tensor<1x4x2xi8>, tensor<1x2xi32>, tensor<1x4x2xi8>, tensor<1x2xi32>, tensor<1x2x4xi8>, tensor<4xi32>) -> tensor<3x4xi8>
  func.return %y : tensor<3x4xi8>
}
// CHECK: 'tinyattn.mhsa' op 'q_requant' has 3 channels, expected 1 or 2

// -----

// A table lookup: the 8-bit value, widened (zero-extended where unsigned), less the type's
// lowest value indexes the table; the entry is stored as it is (i32 or 8 bits).
func.func @lookup(%x: tensor<2x3xui8>, %y: tensor<2x3xi8>) -> (tensor<2x3xi32>, tensor<2x3xi8>) {
  %t32 = arith.constant dense<5> : tensor<256xi32>
  %t8 = arith.constant dense<7> : tensor<256xi8>
  %a = tinyattn.lookup %x, %t32 : (tensor<2x3xui8>, tensor<256xi32>) -> tensor<2x3xi32>
  %b = tinyattn.lookup %y, %t8 : (tensor<2x3xi8>, tensor<256xi8>) -> tensor<2x3xi8>
  func.return %a, %b : tensor<2x3xi32>, tensor<2x3xi8>
}

// CHECK:      "memref.global"() <{sym_name = "t32", type = memref<256xi32>
// CHECK:      "memref.global"() <{sym_name = "t8", type = memref<256xi8>
// CHECK-LABEL: func.func @lookup(%x: memref<2x3xi8>, %y: memref<2x3xi8>, %out0: memref<2x3xi32>, %out1: memref<2x3xi8>)
// CHECK:          %[[U:.*]] = arith.extui %{{.*}} : i8 to i32
// CHECK-NEXT:     %[[ZERO:.*]] = arith.constant 0 : i32
// CHECK-NEXT:     %[[I:.*]] = arith.subi %[[U]], %[[ZERO]] : i32
// CHECK-NEXT:     %[[IX:.*]] = arith.index_cast %[[I]] : i32 to index
// CHECK-NEXT:     %[[E:.*]] = memref.load %t32[%[[IX]]] : memref<256xi32>
// CHECK-NEXT:     memref.store %[[E]], %{{.*}} : memref<1x6xi32>
// CHECK:          %[[S:.*]] = arith.extsi %{{.*}} : i8 to i32
// CHECK-NEXT:     %[[LOW:.*]] = arith.constant -128 : i32
// CHECK-NEXT:     %[[J:.*]] = arith.subi %[[S]], %[[LOW]] : i32
// CHECK-NEXT:     %[[JX:.*]] = arith.index_cast %[[J]] : i32 to index
// CHECK-NEXT:     %[[F:.*]] = memref.load %t8[%[[JX]]] : memref<256xi8>
// CHECK-NEXT:     memref.store %[[F]], %{{.*}} : memref<1x6xi8>

// -----

// x * m + a with m per head and a per column: each broadcast operand is read through a view of
// its global with stride 0 along the axes it is broadcast over, in a loop nest of x's rank.
func.func @muladd(%x: tensor<2x3x4xi8>) -> tensor<2x3x4xi8> {
  %m = arith.constant dense<[[[2]], [[3]]]> : tensor<2x1x1xi32>
  %a = arith.constant dense<[1, 2, 3, 4]> : tensor<4xi32>
  %y = tinyattn.muladd %x, %m, %a {requant = #tinyattn.requant<mul = 1, add = 0, shift = 1>} : (tensor<2x3x4xi8>, tensor<2x1x1xi32>, tensor<4xi32>) -> tensor<2x3x4xi8>
  func.return %y : tensor<2x3x4xi8>
}

// CHECK-LABEL: func.func @muladd(%x: memref<2x3x4xi8>, %out: memref<2x3x4xi8>)
// CHECK:      %[[M:.*]] = memref.reinterpret_cast %m to offset: [0], sizes: [2, 3, 4], strides: [1, 0, 0] : memref<2x1x1xi32> to memref<2x3x4xi32, strided<[1, 0, 0]>>
// CHECK-NEXT: %[[A:.*]] = memref.reinterpret_cast %a to offset: [0], sizes: [2, 3, 4], strides: [0, 0, 1] : memref<4xi32> to memref<2x3x4xi32, strided<[0, 0, 1]>>
// CHECK:              %[[X:.*]] = memref.load %x[%{{.*}}, %{{.*}}, %{{.*}}] : memref<2x3x4xi8>
// CHECK-NEXT:         %[[XW:.*]] = arith.extsi %[[X]] : i8 to i32
// CHECK-NEXT:         %[[MV:.*]] = memref.load %[[M]][%{{.*}}, %{{.*}}, %{{.*}}] : memref<2x3x4xi32, strided<[1, 0, 0]>>
// CHECK-NEXT:         %[[AV:.*]] = memref.load %[[A]][%{{.*}}, %{{.*}}, %{{.*}}] : memref<2x3x4xi32, strided<[0, 0, 1]>>
// CHECK-NEXT:         %[[P:.*]] = arith.muli %[[XW]], %[[MV]] : i32
// CHECK-NEXT:         %[[S:.*]] = arith.addi %[[P]], %[[AV]] : i32

// -----

// A batched product: one kernel.matmul per batch element, in a loop, on 2-D views.
func.func @matmul(%a: tensor<2x3x4xi8>, %b: tensor<2x4x5xui8>) -> tensor<2x3x5xi8> {
  %y = tinyattn.matmul %a, %b {requant = #tinyattn.requant<mul = 3, add = 0, shift = 4>} : (tensor<2x3x4xi8>, tensor<2x4x5xui8>) -> tensor<2x3x5xi8>
  func.return %y : tensor<2x3x5xi8>
}

// CHECK-LABEL: func.func @matmul(%a: memref<2x3x4xi8>, %b: memref<2x4x5xi8>, %out: memref<2x3x5xi8>)
// CHECK:      scf.for %[[BATCH:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:   %{{.*}} = memref.subview %a[%[[BATCH]], 0, 0] [1, 3, 4] [1, 1, 1] : memref<2x3x4xi8> to memref<3x4xi8, strided<[4, 1], offset: ?>>
// CHECK-NEXT:   %{{.*}} = memref.subview %b[%[[BATCH]], 0, 0] [1, 4, 5] [1, 1, 1] : memref<2x4x5xi8> to memref<4x5xi8, strided<[5, 1], offset: ?>>
// CHECK-NEXT:   %{{.*}} = memref.subview %out[%[[BATCH]], 0, 0] [1, 3, 5] [1, 1, 1] : memref<2x3x5xi8> to memref<3x5xi8, strided<[5, 1], offset: ?>>
// CHECK:          arith.extui %{{.*}} : i8 to i32

// -----

// The integer RMS norm of a row: the sum of squares divided (unsigned) by the width, plus one,
// its integer square root, then each x * w divided toward zero and shifted.
func.func @rmsnorm(%x: tensor<3x8xi8>) -> tensor<3x8xi32> {
  %w = arith.constant dense<1000> : tensor<8xi32>
  %y = tinyattn.rmsnorm %x, %w {shift = 4 : i64} : (tensor<3x8xi8>, tensor<8xi32>) -> tensor<3x8xi32>
  func.return %y : tensor<3x8xi32>
}

// CHECK-LABEL: func.func @rmsnorm(%x: memref<3x8xi8>, %out: memref<3x8xi32>)
// CHECK:          %[[SQ:.*]] = arith.muli %{{.*}}, %{{.*}} : i32
// CHECK:        %[[WIDTH:.*]] = arith.constant 8 : i32
// CHECK-NEXT:   %[[MEAN:.*]] = arith.divui %{{.*}}, %[[WIDTH]] : i32
// CHECK:        scf.while
// CHECK:          %[[P:.*]] = arith.muli %{{.*}}, %{{.*}} : i32
// CHECK-NEXT:     %[[Q:.*]] = arith.divsi %[[P]], %{{.*}} : i32
// CHECK-NEXT:     %[[SHIFT:.*]] = arith.constant 4 : i32
// CHECK-NEXT:     %[[Y:.*]] = arith.shrsi %[[Q]], %[[SHIFT]] : i32
// CHECK-NEXT:     memref.store %[[Y]], %{{.*}} : memref<3x8xi32>

// -----

// QuantLib's integer layer norm: the truncated mean (a signed division), the deviation as the
// RMS norm's, then d * gamma in i64, divided by the deviation in two unsigned i32 divisions
// (no 64-bit division for the targets to lack), the bias added, shifted and saturated to i32.
func.func @quantlib_layernorm(%x: tensor<3x8xi8>) -> tensor<3x8xi8> {
  %g = arith.constant dense<16777216> : tensor<8xi32>
  %y = tinyattn.layernorm %x, %g, %g {epsilon = 0.0 : f32, ilayernorm = #tinyattn.quantlib_layernorm<shift = 24>, requant = #tinyattn.requant<mul = 1, add = 0, shift = 0>} : (tensor<3x8xi8>, tensor<8xi32>, tensor<8xi32>) -> tensor<3x8xi8>
  func.return %y : tensor<3x8xi8>
}

// CHECK-LABEL: func.func @quantlib_layernorm(%x: memref<3x8xi8>, %out: memref<3x8xi8>)
// CHECK:        %[[MEAN:.*]] = arith.divsi %{{.*}}, %{{.*}} : i32
// CHECK:        arith.divui %{{.*}}, %{{.*}} : i32
// CHECK:        scf.while
// CHECK:          %[[P:.*]] = arith.muli %{{.*}}, %{{.*}} : i64
// CHECK-NOT:      arith.divsi
// CHECK:          arith.divui %{{.*}}, %{{.*}} : i32
// CHECK:          arith.divui %{{.*}}, %{{.*}} : i32
// CHECK-NOT:      arith.div
// CHECK:          arith.shrsi %{{.*}}, %{{.*}} : i64
// CHECK:          arith.trunci %{{.*}} : i64 to i32
// CHECK:          memref.store %{{.*}}, %{{.*}} : memref<3x8xi8>

// -----

// A grouped (depthwise) convolution: per output element, the taps of each input channel of its
// group, a tap in the padding reading zero (the clamped read selected away); max pooling keeps
// the running maximum where the tap is inside; a transpose copies from a view with permuted
// strides.
func.func @tokenizer(%x: tensor<2x4x4xi8>) -> tensor<4x2xi8> {
  %w = arith.constant dense<1> : tensor<2x1x3x3xi8>
  %c = tinyattn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, groups = 2 : i64, requant = #tinyattn.requant<mul = 1, add = 0, shift = 2>} : (tensor<2x4x4xi8>, tensor<2x1x3x3xi8>) -> tensor<2x4x4xi8>
  %p = tinyattn.maxpool %c {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<2x4x4xi8>) -> tensor<2x2x2xi8>
  %r = tinyattn.reshape %p : (tensor<2x2x2xi8>) -> tensor<2x4xi8>
  %t = tinyattn.transpose %r {perm = array<i64: 1, 0>} : (tensor<2x4xi8>) -> tensor<4x2xi8>
  func.return %t : tensor<4x2xi8>
}

// CHECK-LABEL: func.func @tokenizer(%x: memref<2x4x4xi8>, %out: memref<4x2xi8>)
// CHECK:            %[[V:.*]] = memref.load %x[%{{.*}}, %{{.*}}, %{{.*}}] : memref<2x4x4xi8>
// CHECK-NEXT:       %[[VW:.*]] = arith.extsi %[[V]] : i8 to i32
// CHECK-NEXT:       %[[W:.*]] = memref.load %w[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] : memref<2x1x3x3xi8>
// CHECK-NEXT:       %[[TAP:.*]] = arith.select %{{.*}}, %[[VW]], %{{.*}} : i32
// CHECK:      %p = memref.alloc() {alignment = 16 : i64} : memref<2x2x2xi8>
// CHECK:          %[[LOW:.*]] = arith.constant -128 : i32
// CHECK:              %[[LARGER:.*]] = arith.maxsi %[[BEST:.*]], %{{.*}} : i32
// CHECK-NEXT:         %{{.*}} = arith.select %{{.*}}, %[[LARGER]], %[[BEST]] : i32
// CHECK:      %[[VIEW:.*]] = memref.reinterpret_cast %{{.*}} to offset: [0], sizes: [4, 2], strides: [1, 4] : memref<2x4xi8> to memref<4x2xi8, strided<[1, 4]>>

// -----

// Concat copies each operand into a view of the result at its offset; a slice copies from a
// view of its operand (offset, strides times steps).
func.func @class_token(%x: tensor<4x6xi8>, %cls: tensor<1x6xi8>) -> tensor<2x3xi8> {
  %t = tinyattn.concat %cls, %x {axis = 0 : i64} : (tensor<1x6xi8>, tensor<4x6xi8>) -> tensor<5x6xi8>
  %c = tinyattn.slice %t {starts = array<i64: 1, 1>, steps = array<i64: 2, 2>} : (tensor<5x6xi8>) -> tensor<2x3xi8>
  func.return %c : tensor<2x3xi8>
}

// CHECK-LABEL: func.func @class_token(%x: memref<4x6xi8>, %cls: memref<1x6xi8>, %out: memref<2x3xi8>)
// CHECK:      %{{.*}} = memref.reinterpret_cast %t to offset: [0], sizes: [1, 6], strides: [6, 1] : memref<5x6xi8> to memref<1x6xi8, strided<[6, 1]>>
// CHECK:      %{{.*}} = memref.reinterpret_cast %t to offset: [6], sizes: [4, 6], strides: [6, 1] : memref<5x6xi8> to memref<4x6xi8, strided<[6, 1], offset: 6>>
// CHECK:      %{{.*}} = memref.reinterpret_cast %t to offset: [7], sizes: [2, 3], strides: [12, 2] : memref<5x6xi8> to memref<2x3xi8, strided<[12, 2], offset: 7>>

// -----

// ITA's softmax: per element shift = (max - x + 16) >> 5; the row's 65280 / sum(256 >> shift)
// (unsigned), then that >> shift; no scratch row.
func.func @itamax(%x: tensor<3x5xi8>) -> tensor<3x5xui8> {
  %y = tinyattn.softmax %x {itamax} : (tensor<3x5xi8>) -> tensor<3x5xui8>
  func.return %y : tensor<3x5xui8>
}

// CHECK-LABEL: func.func @itamax(%x: memref<3x5xi8>, %out: memref<3x5xi8>)
// CHECK-NOT:  memref.alloc
// CHECK:        %[[HALF:.*]] = arith.constant 16 : i32
// CHECK:        %[[FIVE:.*]] = arith.constant 5 : i32
// CHECK:        %[[INV:.*]] = arith.divui %{{.*}}, %{{.*}} : i32

// -----

// A convolution of one group is im2col (one row of patches per output position, zero in the
// padding) and a matmul of those rows with the weights, read along the depth and stored
// transposed: [C_out, OH*OW] is the output's layout.
func.func @conv_as_matmul(%x: tensor<2x4x4xui8>) -> tensor<3x2x2xi8> {
  %w = arith.constant dense<1> : tensor<3x2x3x3xi8>
  %b = arith.constant dense<[1, 2, 3]> : tensor<3xi32>
  %c = tinyattn.conv %x, %w, %b {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 0, 0>, groups = 1 : i64, requant = #tinyattn.requant<mul = 1, add = 0, shift = 2>} : (tensor<2x4x4xui8>, tensor<3x2x3x3xi8>, tensor<3xi32>) -> tensor<3x2x2xi8>
  func.return %c : tensor<3x2x2xi8>
}

// CHECK-LABEL: func.func @conv_as_matmul
// CHECK:      %[[PATCHES:.*]] = memref.alloc() {alignment = 16 : i64} : memref<4x18xi8>
// CHECK:      %[[ROWS:.*]] = memref.reinterpret_cast %[[PATCHES]] to offset: [0], sizes: [2, 2, 2, 3, 3], strides: [36, 18, 9, 3, 1] : memref<4x18xi8> to memref<2x2x2x3x3xi8>
// CHECK:      memref.dealloc %[[PATCHES]]
