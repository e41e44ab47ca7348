// RUN: %tinyattn-opt %s | %tinyattn-opt | %filecheck %s --check-prefix=ROUNDTRIP
// RUN: %tinyattn-opt %s --lower-dma | %filecheck %s
// RUN: %tinyattn-opt %s --lower-dma --print-op-generic | %mlir-opt --verify-each > /dev/null
// REQUIRES: mlir

// A row block of an L2 matrix to an L1 tile (2-D, strided source), and a whole vector (1-D).
func.func @copy_in(%l2: memref<16x8xf32>, %tile: memref<4x8xf32, "L1">, %v: memref<8xi8>, %vt: memref<8xi8, "L1">, %row: index) {
  %rows = memref.subview %l2[%row, 0] [4, 8] [1, 1] : memref<16x8xf32> to memref<4x8xf32, strided<[8, 1], offset: ?>>
  %t = dma.start %rows, %tile : memref<4x8xf32, strided<[8, 1], offset: ?>>, memref<4x8xf32, "L1">
  %u = dma.start %v, %vt : memref<8xi8>, memref<8xi8, "L1">
  dma.wait %t
  dma.wait %u
  func.return
}

// ROUNDTRIP: %t = dma.start %rows, %tile : memref<4x8xf32, strided<[8, 1], offset: ?>>, memref<4x8xf32, "L1">
// ROUNDTRIP: dma.wait %t

// CHECK:       func.func private @ta_dma_start_1d(index, index, index) -> i32
// CHECK:       func.func private @ta_dma_start_2d(index, index, index, index, index, index) -> i32
// CHECK:       func.func private @ta_dma_wait(i32) -> ()
// CHECK-LABEL: func.func @copy_in
// CHECK:         "memref.extract_aligned_pointer_as_index"(%tile)
// CHECK:         %[[SPTR:[0-9]+]] = "memref.extract_aligned_pointer_as_index"(%rows)
// CHECK:         %{{[0-9]+}}, %[[OFF:[0-9]+]], %{{.*}} = memref.extract_strided_metadata %rows
// CHECK:         %[[FOUR:.*]] = arith.constant 4 : index
// CHECK-NEXT:    %[[BYTES:.*]] = arith.muli %[[OFF]], %[[FOUR]] : index
// CHECK-NEXT:    %[[SRC:.*]] = arith.addi %[[SPTR]], %[[BYTES]] : index
// row bytes 32, 4 rows, destination stride 32 bytes, source stride 32 bytes
// CHECK:         %[[T:.*]] = func.call @ta_dma_start_2d(%{{.*}}, %[[SRC]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (index, index, index, index, index, index) -> i32
// CHECK:         %[[U:.*]] = func.call @ta_dma_start_1d(%{{.*}}, %{{.*}}, %{{.*}}) : (index, index, index) -> i32
// CHECK:         func.call @ta_dma_wait(%[[T]]) : (i32) -> ()
// CHECK-NEXT:    func.call @ta_dma_wait(%[[U]]) : (i32) -> ()
// CHECK-NOT:     dma.
