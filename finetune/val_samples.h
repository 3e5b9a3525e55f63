// The validation predictions the report's grid shows: a bounded, deterministic selection that draws
// from every class and puts the mistakes first. Classes take turns (round-robin in class order, up to
// `keep` in all), so each class gets about keep / C tiles whatever the class sizes; within a class its
// mistakes come before its correct predictions, each in loader order (a validation loader does not
// shuffle, so the same model gives the same selection).
#pragma once
#include <cstdint>
#include <vector>

namespace rtune::finetune {

struct ValPrediction {
  int64_t index = 0, label = 0, pred = 0;  // dataset index, true and predicted class
  double prob = 0;                         // softmax probability of pred
  bool correct() const { return label == pred; }
};

// Fed every prediction of an evaluation in loader order; holds at most 2 * keep per class.
class ValSampleSelector {
 public:
  ValSampleSelector(int64_t num_classes, int64_t keep);
  // Whether add() would still keep a prediction of this kind (lets evaluate skip the softmax of a
  // batch none of whose predictions would be kept).
  bool wants(int64_t label, bool correct) const;
  void add(const ValPrediction& p);  // requires: 0 <= p.label < num_classes
  // At most `keep` predictions, every class present when num_classes <= keep (and it has samples):
  // all selected mistakes first, then the correct ones, each part in round-robin order.
  std::vector<ValPrediction> selection() const;

 private:
  int64_t keep_;
  std::vector<std::vector<ValPrediction>> wrong_, right_;  // by true class, loader order
};

}  // namespace rtune::finetune
