// StoredTensor: bounds checks and the strided -> row-major copy (see stored_tensor.h).
#include "io/formats/stored_tensor.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "engine/error.h"
#include "io/formats/stored_checked.h"

namespace rtune::io {

int64_t StoredTensor::numel() const {
  int64_t n = 0;
  return shape_numel(shape, n) ? n : 0;
}

bool StoredTensor::is_contiguous() const {
  int64_t expect = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] != 1 && strides[i] != expect) return false;
    expect *= shape[i];
  }
  return true;
}

void validate_view(const StoredTensor& t, const std::string& what, int64_t limit_elems) {
  if (t.shape.size() != t.strides.size())
    fail("{}: shape has {} dims but stride has {}", what, t.shape.size(), t.strides.size());
  int64_t numel = 0, esize = int64_t(dtype_size(t.dtype));
  if (!shape_numel(t.shape, numel)) fail("{}: shape has a negative size or its product overflows", what);
  if (t.storage_offset < 0) fail("{}: negative storage offset {}", what, t.storage_offset);
  for (int64_t s : t.strides)
    if (s < 0) fail("{}: negative stride {}", what, s);
  int64_t storage_elems = t.storage ? int64_t(t.storage->size()) / esize : 0;
  if (limit_elems >= 0) storage_elems = std::min(storage_elems, limit_elems);
  if (numel == 0) return;
  // Last element's index: offset + sum (size-1) * stride, overflow-checked.
  int64_t last = t.storage_offset;
  for (size_t i = 0; i < t.shape.size(); ++i) {
    int64_t span = 0;
    if (!mul_ok(t.shape[i] - 1, t.strides[i], span) || !add_ok(last, span, last))
      fail("{}: view extent overflows", what);
  }
  if (last >= storage_elems)
    fail("{}: view reaches element {} but its storage holds {} elements", what, last, storage_elems);
  // An overlapping view (stride 0, as expand() makes) would materialize more bytes than the file holds: a few
  // bytes could ask for gigabytes. Refusing it bounds every load by the size of its storages.
  if (numel > storage_elems)
    fail("{}: view has {} elements but its storage holds only {} (an overlapping view, as expand() makes); "
         "save the tensor with .contiguous() or .clone()",
         what, numel, storage_elems);
}

std::vector<std::byte> StoredTensor::contiguous_bytes() const {
  const int64_t n = numel();
  const size_t es = dtype_size(dtype);
  std::vector<std::byte> out(size_t(n) * es);
  if (n == 0) return out;
  const std::byte* base = storage->data();
  if (is_contiguous()) {
    std::memcpy(out.data(), base + size_t(storage_offset) * es, out.size());
    return out;
  }
  // Odometer over the index, innermost dim fastest.
  const size_t rank = shape.size();
  std::vector<int64_t> idx(rank, 0);
  int64_t src = storage_offset;
  for (int64_t k = 0; k < n; ++k) {
    std::memcpy(out.data() + size_t(k) * es, base + size_t(src) * es, es);
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < shape[d]) {
        src += strides[d];
        break;
      }
      src -= (shape[d] - 1) * strides[d];
      idx[d] = 0;
    }
  }
  return out;
}

}  // namespace rtune::io
