// A tensor as a weight file stores it (dtype, shape, element strides, offset into a shared storage),
// independent of rtune::Tensor. Matches torch's storage/view model: strides and storage_offset count
// elements, several tensors may share one storage (torch.save keeps views' whole storages).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/dtype.h"

namespace rtune::io {

struct StoredTensor {
  DType dtype = DType::f32;
  std::vector<int64_t> shape, strides;                     // strides in elements
  int64_t storage_offset = 0;                              // in elements
  std::shared_ptr<const std::vector<std::byte>> storage;   // the whole storage (shared between views)

  int64_t numel() const;
  bool is_contiguous() const;                  // row-major strides (size-1 dims ignored)
  // A row-major copy of the viewed elements. requires: the view lies inside the storage, which
  // validate_view() checks and load_pth() guarantees.
  std::vector<std::byte> contiguous_bytes() const;
};

// Throws rtune::Error (prefixed with `what`) unless shape and strides have equal rank, nothing is
// negative, numel doesn't overflow, and every viewed element lies below `limit_elems` (default, -1:
// the storage's element count).
void validate_view(const StoredTensor& t, const std::string& what, int64_t limit_elems = -1);

}  // namespace rtune::io
