// A transform pipeline (T.Compose of the transforms in random.h, then ToTensor + Normalize) built
// from a compact spec string, e.g.
//   resize=300,rotate=45,center_crop=224,hflip,vflip,grayscale=0.1,normalize=imagenet
// Presets: imagenet-train, imagenet-eval, cifar-train, cifar-eval (usable alone or as a token; all normalise
// with ImageNet's statistics).
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/image/decode.h"
#include "io/transforms/random.h"
#include "io/transforms/normalize.h"

namespace rtune::io {

struct Pipeline {
  std::vector<Transform> transforms;
  std::optional<Normalize> normalize;  // applied by to_tensor(); absent = ToTensor only

  // Runs the uint8 transforms in order, drawing from `rng`.
  Image apply(const Image& img, Rng& rng) const;
  // apply(), then ToTensor (+ Normalize): CHW float32.
  std::vector<float> apply_to_tensor(const Image& img, Rng& rng) const;

  // The (height, width) every output has, when the pipeline fixes it (ends in a crop or (h, w)
  // resize followed only by size-keeping transforms); nullopt when it depends on the input.
  std::optional<std::pair<int, int>> output_size() const;
  // output_size(), or S x S when the size is last set by resize=S (shorter side), as torchvision's
  // Resize(S): what square inputs give. Batching such a pipeline holds only for square images; the
  // loader stops at the first other one, naming it.
  std::optional<std::pair<int, int>> batch_size() const;
  // What JPEG DCT scaling may shrink to without starving the first transform: only a leading Resize
  // gives a bound; anything else returns an empty hint (full-size decode).
  DecodeHint decode_hint() const;
  std::string describe() const;
  // True when no transform draws a random number (only Resize and CenterCrop): every epoch gives
  // each image the same pixels.
  bool deterministic() const;
};

// Parses a spec; throws rtune::Error naming the bad token plus the usage text below.
Pipeline parse_pipeline(std::string_view spec);

// The grammar, for --help texts and error messages.
std::string_view pipeline_usage();

}  // namespace rtune::io
