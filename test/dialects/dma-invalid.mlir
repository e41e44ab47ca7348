// RUN: %tinyattn-opt --split-input-file --verify-diagnostics %s | %filecheck %s

func.func @shapes(%a: memref<4x8xf32>, %b: memref<8x4xf32>) {
  %t = dma.start %a, %b : memref<4x8xf32>, memref<8x4xf32>
  func.return
}
// CHECK: 'dma.start' op source shape [4, 8] differs from destination shape [8, 4]

// -----

func.func @elements(%a: memref<8xf32>, %b: memref<8xi32>) {
  %t = dma.start %a, %b : memref<8xf32>, memref<8xi32>
  func.return
}
// CHECK: 'dma.start' op source element type f32 differs from destination element type i32

// -----

func.func @rank(%a: memref<2x2x2xf32>, %b: memref<2x2x2xf32>) {
  %t = dma.start %a, %b : memref<2x2x2xf32>, memref<2x2x2xf32>
  func.return
}
// CHECK: 'dma.start' op transfers are 1-D or 2-D, got rank 3

// -----

func.func @columns(%a: memref<8x8xf32>, %b: memref<8x4xf32>) {
  %cols = memref.subview %a[0, 0] [8, 4] [1, 2] : memref<8x8xf32> to memref<8x4xf32, strided<[8, 2]>>
  %t = dma.start %cols, %b : memref<8x4xf32, strided<[8, 2]>>, memref<8x4xf32>
  func.return
}
// CHECK: 'dma.start' op source rows must be contiguous (innermost stride 1)
