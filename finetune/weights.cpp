#include "finetune/weights.h"
#include <fstream>
#include <set>
#include "engine/autograd.h"
#include "engine/printable.h"
#include "io/formats/pth.h"
#include "io/formats/safetensors.h"

namespace rtune::finetune {

namespace {
bool looks_like_pth(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  RTUNE_CHECK(f.good(), "cannot open weight file '{}'", path.string());
  unsigned char magic[2] = {0, 0};
  f.read(reinterpret_cast<char*>(magic), 2);
  // zip ("PK") or a pickle stream (PROTO opcode 0x80): PyTorch; anything else is tried as safetensors.
  return (magic[0] == 'P' && magic[1] == 'K') || magic[0] == 0x80;
}
}  // namespace

WeightFile read_weight_file(const std::filesystem::path& path, const std::string& key) {
  WeightFile out;
  if (looks_like_pth(path)) {
    io::PthContents c = io::load_pth(path, {key});
    for (auto& [name, st] : c.tensors) {
      std::vector<std::byte> bytes = st.contiguous_bytes();
      out.tensors.emplace_back(name, from_bytes(bytes.data(), bytes.size(), st.shape, st.dtype));
    }
    out.notes = c.notes;
    if (!c.source_key.empty()) out.notes.push_back("weights read from the checkpoint's '" + printable(c.source_key) + "' entry");
  } else {
    RTUNE_CHECK(key.empty(), "--key applies to .pth checkpoints; '{}' is a safetensors file", path.string());
    io::SafetensorsFile f = io::SafetensorsFile::open(path);
    for (const io::SafetensorsView& v : f.tensors())
      out.tensors.emplace_back(v.name, from_bytes(v.bytes.data(), v.bytes.size(), v.shape, v.dtype));
    out.metadata = f.metadata();
  }
  return out;
}

std::string LoadReport::summary() const {
  std::string s;
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    s += fmt::format("{} ({}): {}\n", what, v.size(), printable_list(v));  // names from the file: escaped, capped
  };
  list("missing keys", missing);
  list("unexpected keys", unexpected);
  list("shape mismatches", mismatched);
  for (auto& n : notes) s += n + "\n";
  return s;
}

LoadReport load_weights(models::ResNet& model, const std::vector<std::pair<std::string, Tensor>>& tensors,
                        const LoadOptions& o) {
  LoadReport r;
  std::map<std::string, const Tensor*> given;
  for (auto& [n, t] : tensors) given[n] = &t;
  // Head replacement: decide before copying so fc is re-created with the model's class count.
  auto fc_w = given.find("fc.weight");
  if (fc_w != given.end() && fc_w->second->dim() == 2 && fc_w->second->size(0) != model.config().num_classes) {
    if (o.replace_head) {
      r.head_replaced = true;
      r.notes.push_back(fmt::format("replaced the head: the weights have {} classes, the model {}; fc re-initialised "
                                    "as nn.Linear does",
                                    fc_w->second->size(0), model.config().num_classes));
      given.erase("fc.weight");
      given.erase("fc.bias");
      model.reset_head(model.config().num_classes, o.head_seed);
    }
  }
  NoGradGuard ng;
  std::set<std::string> used;
  for (auto& [name, slot] : model.state_dict()) {
    if (r.head_replaced && (name == "fc.weight" || name == "fc.bias")) continue;
    auto it = given.find(name);
    if (it == given.end()) {
      r.missing.push_back(name);
      continue;
    }
    used.insert(name);
    const Tensor& src = *it->second;
    if (src.shape() != slot->shape()) {
      r.mismatched.push_back(fmt::format("{} (file {}, model {})", name, shape_str(src.shape()), shape_str(slot->shape())));
      continue;
    }
    slot->detach().copy_(src.to(slot->dtype()).to(slot->device()));
  }
  for (auto& [n, t] : given)
    if (!used.count(n)) r.unexpected.push_back(n);
  bool bad = !r.missing.empty() || !r.unexpected.empty() || !r.mismatched.empty();
  if (bad && o.strict) {
    std::string hint = r.mismatched.size() && !r.head_replaced && !o.replace_head
                           ? "\n(to fine-tune on a different number of classes, replace the head explicitly)" : "";
    fail("the weights do not match a {} with width {} and {} classes:\n{}{}", model.config().arch, model.config().width,
         model.config().num_classes, r.summary(), hint);
  }
  return r;
}

}  // namespace rtune::finetune
