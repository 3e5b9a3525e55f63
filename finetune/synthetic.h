// A small synthetic image dataset with two related tasks, generated on the fly (no download), for
// `rtune demo` and the end-to-end tests. Every image is one filled shape of a random colour, size,
// position and slight rotation on a random two-tone noise texture.
//   Task::shapes   4 classes: circle, square, triangle, cross             (pretraining)
//   Task::families 3 classes: round (circle or ellipse), three corners (triangle),
//                  four corners (square or rectangle): a coarser labelling with shapes the first task
//                  never showed (ellipse, rectangle), so features transfer but labels do not.
// Seeded: the same (task, size, count, seed) gives the same pixels on every machine.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>
#include "io/image/image.h"

namespace rtune::finetune::synth {

enum class Task { shapes, families };

std::vector<std::string> class_names(Task t);
// One image of class `label` of task `t`, size x size pixels, drawn from (seed, index).
io::Image render(Task t, int label, int size, uint64_t seed, uint64_t index);
// Writes root/<class name>/<NNNN>.png, `per_class` images per class (an ImageFolder tree). Returns the
// number of files written.
int64_t write_image_folder(const std::filesystem::path& root, Task t, int per_class, int size, uint64_t seed);

}  // namespace rtune::finetune::synth
